"""The vehicle registry: tokens stored as hashes, unique VINs, last seen times."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub import CommandStatus, StatusChange, hash_vehicle_token, verify_vehicle_token
from storage import Database, NewVehicle, UnknownVehicleError, VehicleExistsError
from tests.support.commands import make_command

VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"
VIN_C = "1HGCM82633A004352"


async def test_add_vehicle_returns_a_token_only_its_hash_is_stored(database: Database) -> None:
    vehicle, token = await database.vehicles.add_vehicle(
        VIN_A, make="VW", model="Golf", year=2021, metadata={"fleet": "north", "ecus": [16, 17]}
    )

    credentials = await database.vehicles.find_vehicle(VIN_A)
    assert credentials is not None
    assert credentials.enabled
    assert credentials.token_hash != token
    assert verify_vehicle_token(token, credentials.token_hash)
    assert not verify_vehicle_token(token + "x", credentials.token_hash)

    stored = await database.vehicles.get_vehicle(VIN_A)
    assert stored == vehicle
    assert stored.metadata == {"fleet": "north", "ecus": [16, 17]}
    assert stored.last_seen_at is None
    assert stored.created_at.tzinfo is UTC


async def test_each_vehicle_gets_its_own_token(database: Database) -> None:
    _, token_a = await database.vehicles.add_vehicle(VIN_A, make="VW", model="Golf", year=2021)
    _, token_b = await database.vehicles.add_vehicle(VIN_B, make="VW", model="Polo", year=2022)

    credentials_b = await database.vehicles.find_vehicle(VIN_B)
    assert credentials_b is not None
    assert token_a != token_b
    assert not verify_vehicle_token(token_a, credentials_b.token_hash)


async def test_a_vin_is_registered_once(database: Database) -> None:
    _, token = await database.vehicles.add_vehicle(VIN_A, make="VW", model="Golf", year=2021)

    with pytest.raises(VehicleExistsError, match=f"vehicle {VIN_A} is already registered"):
        await database.vehicles.add_vehicle(VIN_A, make="Audi", model="A3", year=2023)
    credentials = await database.vehicles.find_vehicle(VIN_A)
    assert credentials is not None
    assert verify_vehicle_token(token, credentials.token_hash)


async def test_a_vin_has_17_characters(database: Database) -> None:
    with pytest.raises(ValueError, match="'ABC' is 3 characters long; a VIN has 17"):
        await database.vehicles.add_vehicle("ABC", make="VW", model="Golf", year=2021)


async def test_list_vehicles_is_ordered_by_vin(database: Database) -> None:
    for vin in (VIN_B, VIN_C, VIN_A):
        await database.vehicles.add_vehicle(vin, make="VW", model="Golf", year=2021)

    assert [v.vin for v in await database.vehicles.list_vehicles()] == [VIN_C, VIN_A, VIN_B]


async def test_unknown_vin(database: Database) -> None:
    assert await database.vehicles.find_vehicle(VIN_A) is None
    assert await database.vehicles.get_vehicle(VIN_A) is None
    await database.vehicles.record_seen({VIN_A: datetime.now(UTC)})  # nothing to update, no error


async def test_record_seen_stores_utc_and_never_goes_back(database: Database) -> None:
    await database.vehicles.add_vehicle(VIN_A, make="VW", model="Golf", year=2021)
    cest = timezone(timedelta(hours=2))
    seen = datetime(2025, 6, 1, 14, 30, 0, 123456, tzinfo=cest)

    await database.vehicles.record_seen({VIN_A: seen})
    await database.vehicles.record_seen({VIN_A: seen - timedelta(minutes=5)})  # late, out of order

    vehicle = await database.vehicles.get_vehicle(VIN_A)
    assert vehicle is not None
    assert vehicle.last_seen_at == seen
    assert vehicle.last_seen_at.tzinfo is UTC
    assert vehicle.last_seen_at.hour == 12


async def test_add_vehicle_is_audited(database: Database) -> None:
    await database.vehicles.add_vehicle(VIN_A, make="VW", model="Golf", year=2021)

    [event, issued] = await database.audit.list_audit(target=f"vehicle:{VIN_A}")
    assert (event.actor, event.action) == ("hub", "vehicle.added")
    assert event.details == {"make": "VW", "model": "Golf", "year": 2021}
    assert (issued.actor, issued.action, issued.details) == ("hub", "vehicle.token_issued", {})


async def test_rotate_vehicle_token_retires_the_old_one(database: Database) -> None:
    _, old_token = await database.vehicles.add_vehicle(VIN_A, make="VW", model="Golf", year=2021)

    new_token = await database.vehicles.rotate_vehicle_token(VIN_A)

    credentials = await database.vehicles.find_vehicle(VIN_A)
    assert credentials is not None
    assert verify_vehicle_token(new_token, credentials.token_hash)
    assert not verify_vehicle_token(old_token, credentials.token_hash)
    actions = [e.action for e in await database.audit.list_audit(target=f"vehicle:{VIN_A}")]
    assert actions == ["vehicle.added", "vehicle.token_issued", "vehicle.token_rotated"]
    with pytest.raises(UnknownVehicleError, match=f"vehicle {VIN_B} is not registered"):
        await database.vehicles.rotate_vehicle_token(VIN_B)


async def test_many_vehicles_are_registered_in_one_go(database: Database) -> None:
    vins = [f"1SVDHB{n:011d}" for n in range(1, 201)]
    added = await database.vehicles.add_vehicles(
        [NewVehicle(vin, "VW", "ID.4", 2023) for vin in vins]
    )
    assert [vehicle.vin for vehicle, _ in added] == vins
    assert [v.vin for v in await database.vehicles.list_vehicles()] == vins
    last = await database.vehicles.find_vehicle(vins[-1])
    assert last is not None and verify_vehicle_token(added[-1][1], last.token_hash)
    with pytest.raises(VehicleExistsError, match="a vehicle among 1SVDHB00000000001, "):
        await database.vehicles.add_vehicles(
            [NewVehicle(vin, "VW", "ID.4", 2023) for vin in vins[:5]]
        )


async def test_a_token_lookup_says_whether_commands_wait_for_the_vehicle(
    database: Database,
) -> None:
    _, token = await database.vehicles.add_vehicle(VIN_A, make="VW", model="Golf", year=2021)
    token_hash = hash_vehicle_token(token)

    async def waiting() -> bool:
        (found,) = await database.vehicles.find_vehicles_by_token([token_hash])
        return found.waiting

    assert not await waiting()
    await database.commands.create_command(make_command(VIN_A))  # pending, does not wait
    assert not await waiting()
    waits = replace(make_command(VIN_A), expires_at=datetime.now(UTC) + timedelta(minutes=5))
    await database.commands.create_command(waits)
    assert await waiting()
    ended = StatusChange(waits.id, CommandStatus.EXPIRED, datetime.now(UTC), "offline")
    await database.commands.record([], [ended])
    assert not await waiting()
