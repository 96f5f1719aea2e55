"""The registry of live actors: the only map from a VIN to its actor on this node.

It also keeps how each vehicle's last link to this node ended (`last_disconnect`),
written by the ending actor, or by the hub for a refused link.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

import trio

from hub.model import Disconnect


class _HasVin(Protocol):
    vin: str


A = TypeVar("A", bound=_HasVin)


class Registry(Generic[A]):
    """VIN -> actor. Actors add and remove themselves (in their own try/finally).

    An actor is *removed* as soon as it stops taking messages, and *retired*
    once it has also recorded what it interrupted; `wait_empty` waits for the
    latter, so a stopping hub does not close the journal under a last write.
    """

    def __init__(self) -> None:
        self._actors: dict[str, A] = {}
        self._disconnects: dict[str, Disconnect] = {}
        self._live = 0
        self._empty = trio.Event()
        self._empty.set()

    def add(self, actor: A) -> None:
        """Register `actor` under its VIN; a VIN has at most one actor."""
        if actor.vin in self._actors:
            raise KeyError(f"vehicle {actor.vin} already has an actor")
        self._actors[actor.vin] = actor
        self._live += 1
        if self._empty.is_set():
            self._empty = trio.Event()

    def remove(self, actor: A) -> None:
        """Unregister `actor`: nothing can reach it through the registry any more."""
        del self._actors[actor.vin]

    def disconnected(self, vin: str, disconnect: Disconnect) -> None:
        """Keep how `vin`'s link ended (a refusal too; callers bound which VINs they note)."""
        self._disconnects[vin] = disconnect

    def last_disconnect(self, vin: str) -> Disconnect | None:
        """How `vin`'s last link to this node ended (None if never, or it has an actor now)."""
        return None if vin in self._actors else self._disconnects.get(vin)

    def retire(self) -> None:
        """An actor removed earlier has finished all its work."""
        self._live -= 1
        if self._live == 0:
            self._empty.set()

    def get(self, vin: str) -> A | None:
        """The actor of `vin`, or None."""
        return self._actors.get(vin)

    def __contains__(self, vin: object) -> bool:
        return vin in self._actors

    def __iter__(self) -> Iterator[A]:
        return iter(list(self._actors.values()))

    def __len__(self) -> int:
        return len(self._actors)

    async def wait_empty(self) -> None:
        """Return once every actor has retired."""
        await self._empty.wait()
