"""OpenCommands bounds the unfinished commands of a node, per submitter first, then in all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub import CommandStatus, Overloaded, StatusChange
from hub.load import OpenCommands
from hub.testing import command

VIN = "WVWZZZ1JZXW000001"
AT = datetime(2026, 12, 3, tzinfo=UTC)


def test_a_submitter_meets_their_own_bound_before_the_nodes() -> None:
    load = OpenCommands(max_total=3, max_per_user=2)
    for _ in range(2):
        load.admit("alice")
        load.dispatched(command(VIN, submitted_by="alice"))
    with pytest.raises(Overloaded, match=r"alice has 2 unfinished commands .*per_user"):
        load.admit("alice")
    load.admit("bob")
    load.dispatched(command(VIN, submitted_by="bob"))
    with pytest.raises(Overloaded, match=r"this hub node has 3 unfinished commands"):
        load.admit("carol")
    assert (len(load), load.of("alice"), load.refused) == (3, 2, 2)


def test_only_a_final_status_ends_a_command_and_only_once() -> None:
    load = OpenCommands(max_total=0, max_per_user=1)
    held = command(VIN, submitted_by="alice")
    load.dispatched(held)
    load.dispatched(held)  # a redelivery is the same command
    load.observe(StatusChange(held.id, CommandStatus.RUNNING, AT))
    with pytest.raises(Overloaded):
        load.admit("alice")
    for _ in range(2):
        load.observe(StatusChange(held.id, CommandStatus.SUCCEEDED, AT))
    load.admit("alice")
    assert (len(load), load.of("alice")) == (0, 0)


def test_zero_means_no_bound() -> None:
    load = OpenCommands(max_total=0, max_per_user=0)
    for _ in range(100):
        load.admit("alice")
        load.dispatched(command(VIN, submitted_by="alice"))
    assert len(load) == 100
