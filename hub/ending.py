"""How a command's end reaches people: recorded through the journal, then published.

The one way the hub ends a command is `end_command` (a single end the hub
decides: cancelled before it was sent, failed hand-over, routed, ...) or,
for what an actor records as it runs, `record_and_publish`; both record
first and publish second, on the command's topic and, for events and final
statuses, on its vehicle's topic (a `CommandUpdate` naming the submitter).
Ends that storage writes in bulk in its own transaction (restart recovery,
a dead node's commands, expiry) are published with `publish_ends`, the same
two topics. A subscriber that reads the database after subscribing misses
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import structlog

from hub.batching import GroupCommitJournal, JournalWriteFailed
from hub.model import CommandEventRecord, CommandStatus, CommandUpdate, StatusChange
from hub.ports import EventBus, command_topic, vehicle_topic

log = structlog.get_logger("hub.ending")


async def end_command(
    journal: GroupCommitJournal,
    bus: EventBus,
    command_id: uuid.UUID,
    status: CommandStatus,
    error: str,
    *,
    vin: str | None,
    submitted_by: str | None,
) -> None:
    """Record `command_id`'s final `status` (with `error`), then publish it on its topics.

    `vin` None (a command the caller does not know): on its command topic only.
    A command already final keeps its status (the journal never moves it).
    Held through a database outage as `record_and_publish`.
    """
    change = StatusChange(command_id, status, datetime.now(UTC), error)
    owners = {command_id: submitted_by} if submitted_by is not None else {}
    await record_and_publish(journal, bus, (), [change], vin=vin, owners=owners)


async def record_and_publish(
    journal: GroupCommitJournal,
    bus: EventBus,
    events: Sequence[CommandEventRecord],
    changes: Sequence[StatusChange],
    *,
    vin: str | None,
    owners: Mapping[uuid.UUID, str],
) -> None:
    """Commit `events` and `changes` to the journal, then publish them on their topics.

    Each goes to its command's topic; the events and the final changes also
    go to `vin`'s topic (unless None), wrapped in a `CommandUpdate` naming
    the submitter (from `owners`: each command's submitter, as the caller knows it).
    Publishing to a topic nobody follows costs a dict lookup.

    The journal publishes (calls `publish`) once the records are stored, so
    "recorded before published" holds even through a database outage: then
    this returns at once, the journal holds the records (bounded by
    `journal_buffer_records`) and publishes them, in order, when it has
    written them. A write that fails for another reason is logged and
    published anyway, as the vehicle did send it.
    """

    publish = _publisher(bus, events, changes, vin=vin, owners=owners)
    try:
        await journal.record(events, changes, on_stored=publish)
    except JournalWriteFailed:  # published by the journal all the same
        log.exception("journal.write_failed", events=len(events), changes=len(changes))


def record_and_publish_nowait(
    journal: GroupCommitJournal,
    bus: EventBus,
    changes: Sequence[StatusChange],
    *,
    vin: str,
    owners: Mapping[uuid.UUID, str],
) -> None:
    """`record_and_publish` for `changes`, without waiting for their commit; never blocks.

    Published once committed, as `record_and_publish`; the journal commits in
    order, so nothing the caller records later is committed (or published)
    before them.
    """
    if changes:
        publish = _publisher(bus, (), changes, vin=vin, owners=owners)
        journal.record_nowait((), changes, on_stored=publish)


def _publisher(
    bus: EventBus,
    events: Sequence[CommandEventRecord],
    changes: Sequence[StatusChange],
    *,
    vin: str | None,
    owners: Mapping[uuid.UUID, str],
) -> Callable[[], None]:
    """Publishes `events` and `changes` on their topics (see `record_and_publish`)."""

    def publish() -> None:
        vehicle = vehicle_topic(vin) if vin is not None else None
        for event in events:
            bus.publish(command_topic(event.command_id), event)
            if vehicle is not None:
                bus.publish(vehicle, CommandUpdate(owners.get(event.command_id), event))
        for change in changes:
            bus.publish(command_topic(change.command_id), change)
            if vehicle is not None and change.status.is_final:
                bus.publish(vehicle, CommandUpdate(owners.get(change.command_id), change))

    return publish


def publish_ends(bus: EventBus, ended: Iterable[tuple[str, CommandUpdate]]) -> None:
    """Publish ends that storage recorded itself (each: its VIN and its change, with its
    submitter) on the command's topic and on its vehicle's topic."""
    for vin, update in ended:
        bus.publish(command_topic(update.update.command_id), update.update)
        bus.publish(vehicle_topic(vin), update)
