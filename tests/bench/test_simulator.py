"""Tests of the simulator CLI's argument and fleet-file validation.

The gRPC path is exercised end to end by the hub's integration tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.simulator import FleetFileError, VehicleSpec, load_fleet, main


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.json"
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["--hub", "127.0.0.1:50051", "--fleet-file", str(path), *extra])
    return code, capsys.readouterr().err


def test_load_fleet_reads_every_vehicle(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{"vehicles": [{"vin": "VIN0001", "token": "t1"}, {"vin": "VIN0002", "token": "t2"}]}',
    )

    assert load_fleet(path) == [VehicleSpec("VIN0001", "t1"), VehicleSpec("VIN0002", "t2")]


def test_missing_fleet_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "absent.json"

    code, err = run_cli(path, capsys)

    assert code == 2
    assert err == f"error: fleet file {path}: cannot read it: No such file or directory\n"


def test_invalid_json_exits_2_with_the_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '{"vehicles": [\n  {"vin": "V1", "token": }\n]}')

    code, err = run_cli(path, capsys)

    assert code == 2
    assert err == (
        f"error: fleet file {path}: not valid JSON: Expecting value (line 2 column 26)\n"
    )


@pytest.mark.parametrize(
    "text",
    ['[{"vin": "V1", "token": "t"}]', '{"cars": []}', '{"vehicles": []}', '{"vehicles": {}}'],
)
def test_fleet_without_a_vehicle_list_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = write(tmp_path, text)

    code, err = run_cli(path, capsys)

    assert code == 2
    assert err.startswith(
        f'error: fleet file {path}: expected an object with a non-empty "vehicles" list'
    )


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ('"V1"', "vehicles[0]: expected an object, got str"),
        ('{"vin": "V1"}', 'vehicles[0]: "token" must be a non-empty string, got None'),
        ('{"vin": "", "token": "t"}', "vehicles[0]: \"vin\" must be a non-empty string, got ''"),
        ('{"vin": 7, "token": "t"}', 'vehicles[0]: "vin" must be a non-empty string, got 7'),
        (
            '{"vin": "V1", "token": "a"}, {"vin": "V1", "token": "b"}',
            "vehicles[1]: duplicate vin 'V1'",
        ),
    ],
)
def test_bad_vehicle_entry_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entries: str, problem: str
) -> None:
    path = write(tmp_path, f'{{"vehicles": [{entries}]}}')

    code, err = run_cli(path, capsys)

    assert code == 2
    assert err == f"error: fleet file {path}: {problem}\n"


def test_load_fleet_raises_fleet_file_error(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError, match="not valid JSON"):
        load_fleet(write(tmp_path, "not json"))


@pytest.mark.parametrize("hub", ["127.0.0.1", "127.0.0.1:http", ":50051", "127.0.0.1:70000"])
def test_bad_hub_address_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hub: str
) -> None:
    path = write(tmp_path, '{"vehicles": [{"vin": "V1", "token": "t"}]}')

    with pytest.raises(SystemExit) as exit_info:
        main(["--hub", hub, "--fleet-file", str(path)])

    assert exit_info.value.code == 2
    assert "expected HOST:PORT[,HOST:PORT...] such as 127.0.0.1:50051" in capsys.readouterr().err


def test_negative_latency_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '{"vehicles": [{"vin": "V1", "token": "t"}]}')

    code, err = run_cli(path, capsys, "--event-latency-ms", "-1")

    assert code == 2
    assert err == (
        "error: event_latency_s must be >= 0, got -0.001 "
        "(from --event-latency-ms / --drop-after-events)\n"
    )


def test_negative_drop_after_events_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '{"vehicles": [{"vin": "V1", "token": "t"}]}')

    code, err = run_cli(path, capsys, "--drop-after-events", "-3")

    assert code == 2
    assert "drop_after_events must be >= 0, got -3" in err
