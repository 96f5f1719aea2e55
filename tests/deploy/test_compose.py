"""docker-compose.yml: valid Compose, and every hub service says what the hub understands.

No Docker engine runs here, so the file is checked against the Compose Specification's
JSON schema (tests/deploy/compose_spec.json, as shipped in docker-compose 1.29.2,
Apache-2.0), and, where Debian's `docker-compose` is installed, by `docker-compose config`.
Then each hub service's command goes through the real `sovd-hub` parser, its environment
through the real configuration classes, and its ports, health check and load balancer
routes are held against the configured binds and the app's routes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import jsonschema_rs
import pytest

from bench.simulator import _parse_args, load_fleet
from hub import verify_vehicle_token
from storage import migrate
from tests.support.hub_settings import (
    CLI_VARIABLES,
    ROOT,
    NodeSettings,
    handler_name,
    http_get_routes,
    load_yaml,
    node_settings,
    storage_settings,
    unknown_settings,
)
from tests.support.nginx import Block, parse_nginx

COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).with_name("compose_spec.json")
PROVISION_SCRIPT = ROOT / "deploy" / "compose" / "provision-fleet.sh"
#: What an operator puts in .env (deploy/compose/env.example); values long enough to pass.
DOTENV = {
    "SOVD_HUB_JWT_SECRET": "compose-test-secret-" + "s" * 40,
    "SOVD_HUB_ADMIN_PASSWORD": "compose fleet passphrase",
}
HUB_IMAGE = "sovd-hub:local"
NODES = ("hub-1", "hub-2")
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def interpolate(value: object, env: Mapping[str, str]) -> object:
    """Compose's `${NAME}`, `${NAME:-default}`, `${NAME:?error}` and `$$`, on every string."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise LookupError(f"{name}: {arg}")
        return arg if op and op.endswith("-") else ""

    return _VARIABLE.sub(substitute, value)


def load_compose(env: Mapping[str, str] = DOTENV) -> dict[str, Any]:
    """docker-compose.yml with YAML merge keys applied and variables interpolated."""
    raw = load_yaml(COMPOSE_FILE.read_text())
    return cast(dict[str, Any], interpolate(raw, env))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], compose["services"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "write environments as mappings"
    return {key: str(value) for key, value in env.items()}


def settings_of(service: dict[str, Any]) -> NodeSettings:
    return node_settings(environment(service))


def seconds(duration: str) -> float:
    """A Compose duration such as `15s`, `1m30s`, `500ms`."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


# --- the Compose Specification ---------------------------------------------------------


def compose_validator() -> jsonschema_rs.Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema_rs.Draft201909Validator(schema)


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = [
        f"{list(e.instance_path)}: {e.message}" for e in compose_validator().iter_errors(compose)
    ]
    assert errors == []


def test_schema_check_would_catch_a_mistake(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["hub-1"]["depends_on"]["migrate"]["condition"] = "service_done"
    broken["services"]["hub-2"]["helthcheck"] = {"test": ["CMD", "true"]}
    messages = [e.message for e in compose_validator().iter_errors(broken)]
    assert any("service_done" in m for m in messages)
    assert any("helthcheck" in m for m in messages)


def test_secrets_must_be_set_rather_than_defaulted() -> None:
    with pytest.raises(LookupError, match="SOVD_HUB_JWT_SECRET"):
        load_compose({"SOVD_HUB_ADMIN_PASSWORD": DOTENV["SOVD_HUB_ADMIN_PASSWORD"]})
    with pytest.raises(LookupError, match="SOVD_HUB_ADMIN_PASSWORD"):
        load_compose({"SOVD_HUB_JWT_SECRET": DOTENV["SOVD_HUB_JWT_SECRET"]})


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_config_accepts_the_file() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    command = ["docker-compose", "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    done = subprocess.run(
        [*command, "config", "--quiet"], env={**env, **DOTENV}, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    missing = subprocess.run([*command, "config", "--quiet"], env=env, capture_output=True)
    assert missing.returncode != 0
    assert b"SOVD_HUB_JWT_SECRET" in missing.stderr


# --- the hub services ------------------------------------------------------------------


def test_cli_variables_are_read_by_the_cli() -> None:
    source = "".join(path.read_text() for path in sorted((ROOT / "sovd_hub").glob("*.py")))
    for name in CLI_VARIABLES:
        assert f'os.environ["{name}"]' in source, name


def test_every_hub_image_service_uses_a_real_command_and_real_settings(
    compose: dict[str, Any],
) -> None:
    hub_services = {n: s for n, s in services(compose).items() if s.get("image") == HUB_IMAGE}
    assert set(hub_services) == {"migrate", *NODES, "provision", "fleet"}
    for name, service in hub_services.items():
        env = environment(service)
        assert unknown_settings(env) == set(), name
        # Each builds what it runs with; ConfigError names a bad value.
        settings_of(service) if name in NODES else storage_settings(env)
        assert service["build"] == ".", name
    assert handler_name(services(compose)["migrate"]["command"]) == "_migrate"
    for name in NODES:
        assert handler_name(services(compose)[name]["command"]) == "_serve"


def test_nodes_share_storage_and_secret_with_distinct_ids(compose: dict[str, Any]) -> None:
    nodes = {name: settings_of(services(compose)[name]) for name in NODES}
    assert len({s.hub.node_id for s in nodes.values()}) == len(NODES)
    assert len({s.api.jwt_secret for s in nodes.values()}) == 1
    assert len({s.storage.database_url for s in nodes.values()}) == 1
    assert len({s.storage.redis_url for s in nodes.values()}) == 1
    migrate_db = storage_settings(environment(services(compose)["migrate"]))[1].database_url
    provision_db = storage_settings(environment(services(compose)["provision"]))[1].database_url
    for s in nodes.values():
        assert s.storage.database_url == migrate_db == provision_db
        assert s.storage.database_url.startswith("postgresql://")
        assert "@postgres:" in s.storage.database_url
        assert s.storage.redis_url is not None and "//redis:" in s.storage.redis_url
        assert (s.api.http_host, s.hub.grpc_host) == ("0.0.0.0", "0.0.0.0")


def test_nodes_start_after_migration_and_stop_after_their_shutdown_grace(
    compose: dict[str, Any],
) -> None:
    all_services = services(compose)
    assert all_services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert all_services["migrate"]["restart"] == "no"
    for name in NODES:
        node = all_services[name]
        depends = node["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["redis"] == {"condition": "service_healthy"}
        assert node.get("stop_signal", "SIGTERM") == "SIGTERM"
        grace = settings_of(node).hub.shutdown_grace_s
        assert seconds(node["stop_grace_period"]) > grace


def test_node_health_checks_ask_a_real_route_on_the_configured_port(
    compose: dict[str, Any],
) -> None:
    for name in NODES:
        node = services(compose)[name]
        test = " ".join(node["healthcheck"]["test"])
        match = re.search(r"http://127\.0\.0\.1:(\d+)(/[^'\" ]*)", test)
        assert match, test
        assert int(match.group(1)) == settings_of(node).api.http_port
        assert match.group(2) == "/health/ready"
        assert match.group(2) in http_get_routes()
    assert services(compose)["lb"]["healthcheck"]["test"][-1].endswith("/health/live")


# --- the load balancer -----------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx(compose: dict[str, Any]) -> Block:
    lb = services(compose)["lb"]
    (mount,) = [v for v in lb["volumes"] if v.endswith(":/etc/nginx/nginx.conf:ro")]
    return parse_nginx((ROOT / mount.split(":")[0]).read_text())


def upstream_servers(nginx: Block, name: str) -> set[str]:
    (upstream,) = [b for b in nginx.block("http").blocks("upstream") if b.args == [name]]
    return {d[0] for d in upstream.directives("server")}


def listener(nginx: Block, port: int) -> Block:
    (server,) = [
        b for b in nginx.block("http").blocks("server") if [str(port)] in b.directives("listen")
    ]
    return server


def test_load_balancer_publishes_both_ports_and_spreads_over_every_node(
    compose: dict[str, Any], nginx: Block
) -> None:
    node = settings_of(services(compose)["hub-1"])
    http_port, grpc_port = node.api.http_port, node.hub.grpc_port
    ports = services(compose)["lb"]["ports"]
    assert sorted(ports) == sorted([f"{http_port}:{http_port}", f"{grpc_port}:{grpc_port}"])
    expected_http = {f"{n}:{settings_of(services(compose)[n]).api.http_port}" for n in NODES}
    expected_grpc = {f"{n}:{settings_of(services(compose)[n]).hub.grpc_port}" for n in NODES}
    assert upstream_servers(nginx, "hub_http") == expected_http
    assert upstream_servers(nginx, "hub_grpc") == expected_grpc
    for name in NODES:
        assert services(compose)["lb"]["depends_on"][name] == {"condition": "service_healthy"}


def test_grpc_listener_speaks_http2_and_passes_grpc(compose: dict[str, Any], nginx: Block) -> None:
    grpc = listener(nginx, settings_of(services(compose)["hub-1"]).hub.grpc_port)
    assert grpc.directives("http2") == [["on"]]
    assert grpc.block("location").directives("grpc_pass") == [["grpc://hub_grpc"]]


def test_http_listener_passes_websocket_upgrades(compose: dict[str, Any], nginx: Block) -> None:
    http = listener(nginx, settings_of(services(compose)["hub-1"]).api.http_port)
    location = http.block("location")
    assert location.directives("proxy_pass") == [["http://hub_http"]]
    assert location.directives("proxy_http_version") == [["1.1"]]
    headers = {d[0]: d[1] for d in location.directives("proxy_set_header")}
    assert headers["Upgrade"] == "$http_upgrade"
    assert headers["Connection"] == "$connection_upgrade"
    (upgrade_map,) = nginx.block("http").blocks("map")
    assert upgrade_map.args == ["$http_upgrade", "$connection_upgrade"]
    # The nodes trust exactly this one proxy's X-Forwarded-For.
    assert headers["X-Forwarded-For"] == "$proxy_add_x_forwarded_for"
    for name in NODES:
        assert settings_of(services(compose)[name]).api.forwarded_for_hops == 1


# --- the simulated fleet ---------------------------------------------------------------


def test_fleet_runs_the_provisioned_fleet_through_the_load_balancer(
    compose: dict[str, Any],
) -> None:
    fleet, provision = services(compose)["fleet"], services(compose)["provision"]
    assert fleet["entrypoint"] == ["python", "-m", "bench.simulator"]
    args = _parse_args(fleet["command"])
    grpc_port = settings_of(services(compose)["hub-1"]).hub.grpc_port
    assert args.hub == [("lb", grpc_port)]
    assert str(args.fleet_file) == environment(provision)["FLEET_FILE"]
    assert fleet["depends_on"]["provision"] == {"condition": "service_completed_successfully"}
    assert provision["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    # Both mount the same volume where the fleet file is written.
    volume = f"fleet-data:{Path(str(args.fleet_file)).parent}"
    assert volume in provision["volumes"]
    assert volume + ":ro" in fleet["volumes"]
    assert "fleet-data" in compose["volumes"]
    (script_mount,) = [v for v in provision["volumes"] if v.startswith("./deploy/compose:")]
    script = script_mount.split(":")[1] + "/" + PROVISION_SCRIPT.name
    assert provision["entrypoint"] == ["/bin/sh", script]


def run_provision(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)  # where `sovd-hub` is installed
    return subprocess.run(
        ["/bin/sh", str(PROVISION_SCRIPT)],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_provisioning_registers_the_fleet_once(tmp_path: Path) -> None:
    database = tmp_path / "hub.db"
    migrate(f"sqlite:///{database}")
    fleet_file = tmp_path / "fleet.json"
    env = {
        "SOVD_HUB_DATABASE_URL": f"sqlite:///{database}",
        "SOVD_HUB_NODE_ID": "provision",
        "SOVD_HUB_PASSWORD": DOTENV["SOVD_HUB_ADMIN_PASSWORD"],
        "SOVD_HUB_BCRYPT_ROUNDS": "4",
        "FLEET_SIZE": "2",
        "FLEET_FILE": str(fleet_file),
    }
    done = run_provision(env)
    assert done.returncode == 0, done.stderr
    specs = load_fleet(fleet_file)
    assert [s.vin for s in specs] == ["1SVDHB00000000001", "1SVDHB00000000002"]
    with sqlite3.connect(database) as db:
        hashes = dict(db.execute("SELECT vin, token_hash FROM vehicles").fetchall())
        roles = dict(db.execute("SELECT username, role FROM users").fetchall())
    assert roles == {"admin": "admin"}
    for spec in specs:
        assert verify_vehicle_token(spec.token, hashes[spec.vin])
    written = fleet_file.read_text()
    again = run_provision(env)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert fleet_file.read_text() == written


def test_provisioning_fails_loudly_when_a_vehicle_cannot_be_registered(tmp_path: Path) -> None:
    fleet_file = tmp_path / "fleet.json"
    done = run_provision(  # no schema: nothing can be registered
        {
            "SOVD_HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
            "SOVD_HUB_PASSWORD": DOTENV["SOVD_HUB_ADMIN_PASSWORD"],
            "FLEET_SIZE": "1",
            "FLEET_FILE": str(fleet_file),
        }
    )
    assert done.returncode == 1
    assert "registering 1SVDHB00000000001 failed" in done.stderr
    assert not fleet_file.exists()
    assert not fleet_file.with_name("fleet.json.tmp").exists()
