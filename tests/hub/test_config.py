"""Configuration: precedence, coercion, validation, and the errors a user reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hub import ConfigError, HubConfig, load_config, parse_bind, read_config_file


@dataclasses.dataclass(frozen=True, slots=True)
class _Switches:
    """A config with the field types HubConfig lacks (bool, optional)."""

    debug: bool = False
    label: str | None = "x"


def test_defaults_when_nothing_is_set() -> None:
    assert load_config(HubConfig, environ={}) == HubConfig()


def test_keyword_beats_environment_beats_file_beats_default() -> None:
    config = load_config(
        HubConfig,
        file_values={"grpc_port": 1001, "mailbox_size": 11, "max_in_flight_per_vehicle": 2},
        environ={"SOVD_HUB_GRPC_PORT": "2002", "SOVD_HUB_MAILBOX_SIZE": "22"},
        grpc_port=3003,
    )

    assert config.grpc_port == 3003  # keyword over environment and file
    assert config.mailbox_size == 22  # environment over file
    assert config.max_in_flight_per_vehicle == 2  # file over default
    assert config.heartbeat_interval_s == HubConfig().heartbeat_interval_s  # default


def test_keyword_none_means_not_given() -> None:
    config = load_config(HubConfig, environ={"SOVD_HUB_GRPC_PORT": "2002"}, grpc_port=None)

    assert config.grpc_port == 2002


def test_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOVD_HUB_GRPC_HOST", "0.0.0.0")

    assert load_config(HubConfig).grpc_host == "0.0.0.0"


def test_environment_strings_are_coerced() -> None:
    config = load_config(
        HubConfig,
        environ={
            "SOVD_HUB_HEARTBEAT_INTERVAL_S": " 2.5 ",
            "SOVD_HUB_MAX_IN_FLIGHT_PER_VEHICLE": "8",
        },
    )

    assert config.heartbeat_interval_s == 2.5
    assert config.max_in_flight_per_vehicle == 8


def test_int_in_file_is_accepted_for_a_float_setting() -> None:
    config = load_config(HubConfig, environ={}, file_values={"shutdown_grace_s": 3})

    assert config.shutdown_grace_s == 3.0
    assert isinstance(config.shutdown_grace_s, float)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"environ": {"SOVD_HUB_GRPC_PORT": "fifty"}},
            "grpc_port (from environment SOVD_HUB_GRPC_PORT) must be int, got 'fifty'",
        ),
        (
            {"environ": {}, "file_values": {"mailbox_size": 1.5}},
            "mailbox_size (from config file) must be int, got 1.5",
        ),
        (
            {"environ": {}, "file_values": {"max_in_flight_per_vehicle": True}},
            "max_in_flight_per_vehicle (from config file) must be int, got True",
        ),
        (
            {"environ": {}, "file_values": {"grpc_host": 127}},
            "grpc_host (from config file) must be str, got 127",
        ),
        (
            {"environ": {}, "heartbeat_interval_s": "often"},
            "heartbeat_interval_s (from command line) must be float, got 'often'",
        ),
    ],
)
def test_wrong_type_names_key_and_origin(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(HubConfig, **kwargs)  # type: ignore[arg-type]

    assert str(info.value) == message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("TRUE", True), ("yes", True), ("on", True), ("0", False), ("off", False)],
)
def test_bool_from_environment(raw: str, expected: bool) -> None:
    assert load_config(_Switches, environ={"SOVD_HUB_DEBUG": raw}).debug is expected


def test_bad_bool_names_key_and_origin() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_Switches, environ={"SOVD_HUB_DEBUG": "maybe"})

    assert str(info.value) == "debug (from environment SOVD_HUB_DEBUG) must be bool, got 'maybe'"


def test_optional_setting_accepts_none_from_a_file() -> None:
    assert load_config(_Switches, environ={}, file_values={"label": None}).label is None


def test_unknown_file_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(HubConfig, environ={}, file_values={"grpc_prot": 1})

    assert str(info.value).startswith("unknown setting 'grpc_prot' in config file; known: [")
    assert "'grpc_port'" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"grpc_port": 70000},
            "grpc_port must be a TCP port 0-65535 (0 = any free port), got 70000",
        ),
        ({"grpc_port": -1}, "grpc_port must be a TCP port 0-65535 (0 = any free port), got -1"),
        ({"mailbox_size": 0}, "mailbox_size must be a finite number greater than 0, got 0"),
        (
            {"max_in_flight_per_vehicle": -2},
            "max_in_flight_per_vehicle must be a finite number greater than 0, got -2",
        ),
        (
            {"heartbeat_interval_s": 0},
            "heartbeat_interval_s must be a finite number greater than 0, got 0.0",
        ),
        (
            {"default_command_timeout_s": 700},
            "default_command_timeout_s (700.0) must not exceed max_command_timeout_s (600.0)",
        ),
        ({"max_hello_bytes": 0}, "max_hello_bytes must be a finite number greater than 0, got 0"),
        (
            {"grpc_max_streams_per_connection": 0},
            "grpc_max_streams_per_connection must be a finite number greater than 0, got 0",
        ),
        (
            {"grpc_max_header_list_bytes": -1},
            "grpc_max_header_list_bytes must be a finite number greater than 0, got -1",
        ),
        (
            {"refusal_audit_window_s": 0},
            "refusal_audit_window_s must be a finite number greater than 0, got 0.0",
        ),
        (
            {"grpc_flow_window_bytes": 1024},
            "grpc_flow_window_bytes must be 65535-2147483647 (HTTP/2's limits), got 1024; set "
            "SOVD_HUB_GRPC_FLOW_WINDOW_BYTES",
        ),
    ],
)
def test_invalid_values_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(HubConfig, environ={}, file_values=kwargs)

    assert str(info.value) == message


def test_invalid_value_from_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^grpc_port must be a TCP port 0-65535"):
        load_config(HubConfig, environ={"SOVD_HUB_GRPC_PORT": "65536"})


@pytest.mark.parametrize("raw", ["nan", "inf"])
def test_non_finite_interval_is_refused(raw: str) -> None:
    # The hub sends heartbeat_interval_s * 1000 to every vehicle as an integer;
    # a non-finite value must fail here, at start, not on each vehicle's Hello.
    with pytest.raises(ConfigError, match="heartbeat_interval_s"):
        load_config(HubConfig, environ={"SOVD_HUB_HEARTBEAT_INTERVAL_S": raw})


def test_port_zero_means_any_free_port() -> None:
    assert HubConfig(grpc_port=0).grpc_port == 0


def test_read_config_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[hub]\ngrpc_port = 6000\ngrpc_host = "0.0.0.0"\n[api]\n')

    data = read_config_file(path)
    config = load_config(HubConfig, environ={}, file_values=data["hub"])

    assert data["api"] == {}
    assert (config.grpc_host, config.grpc_port) == ("0.0.0.0", 6000)


def test_bad_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("[hub]\ngrpc_port = = 6000\n")

    with pytest.raises(ConfigError) as info:
        read_config_file(path)

    assert str(info.value).startswith(f"config file {path} is not valid TOML: ")
    assert "line 2" in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigError) as info:
        read_config_file(path)

    assert str(info.value) == f"cannot read config file {path}: No such file or directory"


def test_config_file_section_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("hub = 1\n")

    with pytest.raises(ConfigError) as info:
        read_config_file(path)

    assert str(info.value) == f"config file {path}: [hub] must be a table"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:50051", ("0.0.0.0", 50051)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:8080", ("::1", 8080)),
    ],
)
def test_parse_bind(value: str, expected: tuple[str, int]) -> None:
    assert parse_bind("http_bind", value) == expected


@pytest.mark.parametrize("value", ["8080", ":8080", "localhost:", "localhost:http", "h:-1", ""])
def test_parse_bind_refuses_malformed(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_bind("http_bind", value)

    assert str(info.value) == (
        f"http_bind must look like HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}"
    )


def test_parse_bind_refuses_port_out_of_range() -> None:
    with pytest.raises(ConfigError) as info:
        parse_bind("grpc_bind", "0.0.0.0:65536")

    assert str(info.value) == (
        "grpc_bind must be a TCP port 0-65535 (0 = any free port), got 65536"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"SOVD_HUB_HANDSHAKE_TIMEOUT_S": "5", "SOVD_HUB_HELLO_TIMEOUT_S": "10"},
            "handshake_timeout_s (5) must be at least hello_timeout_s (10)",
        ),
        (
            {"SOVD_HUB_GRPC_MAX_CONNECTIONS_PER_ADDRESS": "-1"},
            "grpc_max_connections_per_address must be a number of connections >= 0",
        ),
        ({"SOVD_HUB_GRPC_MAX_CONNECTIONS": "-5"}, "set SOVD_HUB_GRPC_MAX_CONNECTIONS"),
        ({"SOVD_HUB_GRPC_RESERVED_FILES": "-1"}, "set SOVD_HUB_GRPC_RESERVED_FILES"),
        ({"SOVD_HUB_GRPC_ACCEPT_PAUSE_S": "0"}, "grpc_accept_pause_s must be a finite number"),
    ],
)
def test_bad_gateway_connection_limits_name_their_setting(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(HubConfig, environ=environ)
    assert message in str(info.value)


def test_a_derived_connection_cap_that_leaves_no_file_says_what_to_change() -> None:
    from hub.listener import max_gateway_connections

    with pytest.raises(ConfigError) as info:
        max_gateway_connections(HubConfig(grpc_reserved_files=10_000_000))
    assert "leaves no file for vehicles" in str(info.value)
    assert "SOVD_HUB_GRPC_MAX_CONNECTIONS" in str(info.value)
    assert max_gateway_connections(HubConfig(grpc_max_connections=7)) == 7
