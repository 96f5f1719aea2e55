"""What the deployment files may say about the hub, checked against the hub itself.

The deployment files (docker-compose.yml, Dockerfile, deploy/kubernetes/) name CLI
commands, `SOVD_HUB_*` settings, ports and HTTP paths; these helpers hold each of them
against the real parser, configuration classes and routes.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# PyYAML (a dependency of schemathesis) ships no type hints; types-PyYAML may come later.
import yaml  # type: ignore[import-untyped,unused-ignore]

from api import ApiConfig
from hub import ENV_PREFIX, HubConfig, load_config
from sovd_hub import build_parser
from storage import StorageConfig
from tests.support.app import build_app

ROOT = Path(__file__).resolve().parents[2]
CONFIG_CLASSES: tuple[type[object], ...] = (HubConfig, ApiConfig, StorageConfig)
#: `SOVD_HUB_*` variables the CLI reads itself (not settings): `user add`'s password, the
#: TOML file. `test_cli_variables_are_read_by_the_cli` keeps this list honest.
CLI_VARIABLES = frozenset({"SOVD_HUB_PASSWORD", "SOVD_HUB_CONFIG"})


@dataclasses.dataclass(frozen=True, slots=True)
class NodeSettings:
    """A node's three configurations, as the hub builds them from an environment."""

    hub: HubConfig
    api: ApiConfig
    storage: StorageConfig


def load_yaml(text: str) -> Any:
    """One YAML document (merge keys `<<` applied), safely: plain data only."""
    return yaml.safe_load(text)


def load_yaml_all(text: str) -> list[Any]:
    """Every YAML document of a multi-document file."""
    return list(yaml.safe_load_all(text))


def setting_keys() -> set[str]:
    """Every `SOVD_HUB_<FIELD>` environment variable the hub reads."""
    return {
        ENV_PREFIX + field.name.upper()
        for cls in CONFIG_CLASSES
        for field in dataclasses.fields(cls)  # type: ignore[arg-type]
    }


def unknown_settings(environment: Mapping[str, str]) -> set[str]:
    """The `SOVD_HUB_*` names in `environment` that are no setting of the hub."""
    return (
        {key for key in environment if key.startswith(ENV_PREFIX)} - setting_keys() - CLI_VARIABLES
    )


def node_settings(environment: Mapping[str, str]) -> NodeSettings:
    """Build a node's settings from `environment` only; raises ConfigError if one is bad."""
    return NodeSettings(
        hub=load_config(HubConfig, environ=environment),
        api=load_config(ApiConfig, environ=environment),
        storage=load_config(StorageConfig, environ=environment),
    )


def storage_settings(environment: Mapping[str, str]) -> tuple[HubConfig, StorageConfig]:
    """What a one-shot command (`migrate`, `user add`, `vehicle add`) builds: node id, storage."""
    return load_config(HubConfig, environ=environment), load_config(
        StorageConfig, environ=environment
    )


def default_of(cls: type[object], name: str) -> object:
    """The default value of setting `name` of config class `cls`."""
    (field,) = [f for f in dataclasses.fields(cls) if f.name == name]  # type: ignore[arg-type]
    return field.default


def parse_cli(argv: Sequence[str]) -> argparse.Namespace:
    """Parse `sovd-hub ARGV` with the real parser (argparse exits 2 on a bad command)."""
    return build_parser().parse_args(list(argv))


def handler_name(argv: Sequence[str]) -> str:
    """The name of the function `sovd-hub ARGV` runs, e.g. `_serve` or `_migrate`."""
    return str(parse_cli(argv).handler.__name__)


@functools.cache
def http_get_routes() -> frozenset[str]:
    """The paths of the app's HTTP GET routes (as a node builds the app)."""
    app = build_app()
    return frozenset(
        rule.rule
        for rule in app.url_map.iter_rules()
        if not rule.websocket and "GET" in (rule.methods or ())
    )
