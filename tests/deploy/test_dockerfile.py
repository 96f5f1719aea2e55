"""Dockerfile: multi-stage, non-root, the lock's exact versions, the hub's ports and routes."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from api import ApiConfig
from hub import HubConfig
from tests.support.hub_settings import (
    ROOT,
    default_of,
    handler_name,
    http_get_routes,
    load_yaml,
    node_settings,
    unknown_settings,
)

DOCKERFILE = ROOT / "Dockerfile"


@dataclasses.dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined, comments dropped."""

    keyword: str
    text: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD."""
        start = self.text.index("[")
        value = json.loads(self.text[start:])
        assert isinstance(value, list)
        return [str(item) for item in value]


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """The instructions, split into stages (each starting with FROM); ARGs before FROM first."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments may also sit between continuation lines
        current += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            logical.append(current.strip())
            current = ""
    assert not current, "the Dockerfile ends in a continuation line"
    stages: list[list[Instruction]] = [[]]
    for line in logical:
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append(Instruction(keyword.upper(), rest.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text())[1:]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    (found,) = [i for i in stage if i.keyword == keyword]
    return found


def runs(stage: list[Instruction]) -> str:
    return " ".join(i.text for i in stage if i.keyword == "RUN")


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(instruction.text))  # type: ignore[misc]
    return env


def test_two_stages_and_the_runtime_only_copies_the_builders_environment(
    stages: list[list[Instruction]],
) -> None:
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert only(builder, "FROM").text.endswith(" AS builder")
    (copy,) = [c.text.split() for c in runtime if c.text.startswith("--from=builder")]
    venv = copy[1]
    assert copy[2] == venv
    assert f"python -m venv {venv}" in runs(builder)
    assert env_of(runtime)["PATH"].startswith(f"{venv}/bin:")
    assert "pip install" not in runs(runtime)


def test_the_console_is_built_in_its_own_stage_and_served_from_the_image(
    stages: list[list[Instruction]],
) -> None:
    (console,) = [s for s in stages if only(s, "FROM").text.endswith(" AS console")]
    assert only(console, "FROM").text.startswith("node:20")
    assert "npm ci" in runs(console) and "npm run build" in runs(console)
    runtime = stages[-1]
    copies = [i.text.split() for i in runtime if i.keyword == "COPY"]
    assert ["--from=console", "/console/dist", "/opt/console"] in copies
    assert env_of(runtime)["SOVD_HUB_CONSOLE_DIR"] == "/opt/console"
    assert "npm" not in runs(runtime)  # Node.js stays in the build stage


def test_builder_installs_the_locks_exact_versions_and_the_project_without_deps(
    stages: list[list[Instruction]],
) -> None:
    builder = stages[0]
    copied = [i.text.split() for i in builder if i.keyword == "COPY"]
    (lock_copy,) = [c for c in copied if "requirements.lock" in c]
    lock_path = lock_copy[-1].rstrip("/") + "/requirements.lock"
    install = runs(builder)
    assert f"--constraint {lock_path}" in install
    assert "pip install --no-deps /tmp/src" in install
    assert "pip check" in install


def lock_versions() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def runtime_closure() -> set[str]:
    """pyproject's runtime dependencies and theirs, as installed here from the lock."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            child = Requirement(text)
            extras = requirement.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                pending.append(child)
    return seen


def test_runtime_image_gets_only_locked_runtime_packages() -> None:
    """What `--constraint requirements.lock` installs: all pinned, none of the dev tools."""
    pins = lock_versions()
    closure = runtime_closure()
    assert closure - set(pins) == set(), "runtime packages missing from requirements.lock"
    for name in closure:
        assert metadata.version(name) == pins[name], name
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev_tools = {
        canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["dev"]
    }
    assert closure & dev_tools == set()


def test_runs_as_the_unprivileged_user_kubernetes_expects(
    stages: list[list[Instruction]],
) -> None:
    runtime = stages[-1]
    user = only(runtime, "USER").text
    uid = user.split(":")[0]
    assert uid not in ("root", "0")
    assert f"--uid {uid}" in runs(runtime)
    deployment = load_yaml((ROOT / "deploy" / "kubernetes" / "deployment.yaml").read_text())
    assert str(deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) == uid


def test_exposes_the_default_ports_and_listens_on_every_interface(
    stages: list[list[Instruction]],
) -> None:
    runtime = stages[-1]
    exposed = {int(p) for p in only(runtime, "EXPOSE").text.split()}
    env = env_of(runtime)
    settings = node_settings({**env, "SOVD_HUB_JWT_SECRET": "x" * 32})
    assert exposed == {settings.api.http_port, settings.hub.grpc_port}
    # The image keeps the default ports (ENV does not move them).
    assert exposed == {default_of(ApiConfig, "http_port"), default_of(HubConfig, "grpc_port")}
    assert (settings.api.http_host, settings.hub.grpc_host) == ("0.0.0.0", "0.0.0.0")
    assert unknown_settings(env) == set()


def test_health_check_asks_readiness_on_the_http_port(stages: list[list[Instruction]]) -> None:
    check = only(stages[-1], "HEALTHCHECK")
    command = " ".join(check.exec_form())
    match = re.search(r"os\.environ\.get\('SOVD_HUB_HTTP_PORT', '(\d+)'\) \+ '(/[^']*)'", command)
    assert match, command
    assert int(match.group(1)) == default_of(ApiConfig, "http_port")
    assert match.group(2) == "/health/ready"
    assert match.group(2) in http_get_routes()


def test_entrypoint_is_the_cli_and_stops_on_sigterm(stages: list[list[Instruction]]) -> None:
    runtime = stages[-1]
    assert only(runtime, "ENTRYPOINT").exec_form() == ["sovd-hub"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["sovd-hub"] == "sovd_hub.cli:main"
    assert handler_name(only(runtime, "CMD").exec_form()) == "_serve"
    assert only(runtime, "STOPSIGNAL").text == "SIGTERM"


def test_build_context_keeps_what_the_install_needs() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    needed = {"pyproject.toml", "requirements.lock", "README.md", *packages}
    assert needed & ignored == set()
    assert {".venv", ".git", "tests", ".env"} <= ignored
