"""The vehicles' store: the registry (registering, tokens, enabling, details, searches)
and the hub's `VehicleDirectory` (credentials by VIN and token hash, `last_seen_at`).

Each method crosses the bridge once (`storage.engine.Engine.run`) to run one
transaction of `vehicle_queries` or `history`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

from hub import JSON, VehicleCredentials, hash_vehicle_token, new_vehicle_token
from storage import history, vehicle_queries
from storage.engine import Store
from storage.history import Page, VehicleChanges, VehicleFilter, VehicleOverview
from storage.records import NewVehicle, Vehicle

__all__ = ["VehicleStore"]


class VehicleStore(Store):
    """The vehicle registry; implements `hub.ports.VehicleDirectory` (errors and
    cancellation: see `Store`).
    """

    async def add_vehicle(
        self,
        vin: str,
        *,
        make: str,
        model: str,
        year: int,
        metadata: dict[str, JSON] | None = None,
    ) -> tuple[Vehicle, str]:
        """Register a vehicle (audited); returns it and its new token.

        The token is shown once: only its hash is stored. Raises
        `VehicleExistsError` if the VIN is registered, `ValueError` if the VIN
        is not 17 characters long.
        """
        [added] = await self.add_vehicles([NewVehicle(vin, make, model, year, metadata or {})])
        return added

    async def add_vehicles(
        self, vehicles: Sequence[NewVehicle], *, by: str = "hub"
    ) -> list[tuple[Vehicle, str]]:
        """Register many vehicles in one transaction (all or none), audited as `by`.

        Returns each with its new token (shown once: only its hash is stored).
        """
        now = datetime.now(UTC)
        added = []
        for new in vehicles:
            if len(new.vin) != 17:
                raise ValueError(f"VIN {new.vin!r} is {len(new.vin)} characters long; a VIN has 17")
            vehicle = Vehicle(
                vin=new.vin,
                make=new.make,
                model=new.model,
                year=new.year,
                metadata=dict(new.metadata),
                enabled=True,
                created_at=now,
                last_seen_at=None,
            )
            added.append((vehicle, new_vehicle_token()))
        rows = [(vehicle, hash_vehicle_token(token)) for vehicle, token in added]
        await self._run(vehicle_queries.add_vehicles, self._writer, rows, by)
        return added

    async def rotate_vehicle_token(self, vin: str, *, by: str = "hub") -> str:
        """Issue the vehicle a new token (audited as `by`) and return it; the old one stops working.

        Raises `UnknownVehicleError` if the VIN is not registered. A link that
        is already up is the hub's to close.
        """
        token = new_vehicle_token()
        values: dict[str, object] = {"token_hash": hash_vehicle_token(token)}
        await self._run(
            vehicle_queries.update_vehicle,
            self._writer,
            vin,
            values,
            "vehicle.token_rotated",
            by,
        )
        return token

    async def set_vehicle_enabled(self, vin: str, enabled: bool, *, by: str = "hub") -> None:
        """Enable or disable a vehicle (audited as `by`); `UnknownVehicleError` if unregistered."""
        action = "vehicle.enabled" if enabled else "vehicle.disabled"
        values: dict[str, object] = {"enabled": enabled}
        await self._run(vehicle_queries.update_vehicle, self._writer, vin, values, action, by)

    async def list_vehicles(self) -> list[Vehicle]:
        """Every registered vehicle, ordered by VIN."""
        return await self._run(history.list_vehicles, self._reader, None)

    async def get_vehicle(self, vin: str) -> Vehicle | None:
        """The vehicle with this VIN, or None."""
        found = await self._run(history.list_vehicles, self._reader, vin)
        return found[0] if found else None

    async def search_vehicles(
        self, wanted: VehicleFilter, *, limit: int, offset: int = 0
    ) -> Page[Vehicle]:
        """A page (ordered by VIN) of the vehicles `wanted` selects, with their total count."""
        return await self._run(history.search_vehicles, self._reader, wanted, limit, offset)

    async def vehicle_overview(
        self, vin: str, *, commands_of: str | None = None, recent: int = 10
    ) -> VehicleOverview | None:
        """The vehicle with its active command counts and `recent` newest commands; None if absent.

        `commands_of` limits the recent commands to that submitter's.
        """
        return await self._run(history.vehicle_overview, self._reader, vin, commands_of, recent)

    async def update_vehicle(self, vin: str, changes: VehicleChanges, *, by: str) -> Vehicle:
        """Change a vehicle's make, model, year or metadata (audited "vehicle.updated" as `by`).

        Returns the vehicle as stored now; nothing is written when no value
        differs. Raises `UnknownVehicleError` if the VIN is not registered.
        """
        return await self._run(history.update_vehicle, self._writer, vin, changes, by)

    async def find_vehicle(self, vin: str) -> VehicleCredentials | None:
        """The vehicle's credentials, or None when the VIN is not registered."""
        return await self._run(vehicle_queries.find_vehicle, self._reader, vin)

    async def find_vehicles(self, vins: Collection[str]) -> dict[str, VehicleCredentials]:
        """Credentials of the registered vehicles among `vins`, in one query."""
        if not vins:
            return {}
        return await self._run(vehicle_queries.find_vehicles, self._reader, vins)

    async def find_vehicles_by_token(
        self, token_hashes: Collection[str]
    ) -> list[VehicleCredentials]:
        """Credentials of the registered vehicles whose token hashes to one of `token_hashes`."""
        if not token_hashes:
            return []
        return await self._run(vehicle_queries.find_vehicles_by_token, self._reader, token_hashes)

    async def record_seen(self, seen: Mapping[str, datetime]) -> None:
        """Set each vehicle's `last_seen_at` (one transaction); never moves it back in time."""
        if seen:
            await self._run(vehicle_queries.record_seen, self._writer, seen)
