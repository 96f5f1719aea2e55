"""The gateway's HTTP/2 setup: the settings it advertises, and h2 settings kept in lists.

The advertised settings are read by a raw h2 client over a real socket, so
they are the hub's initial values from the first frame, not a later update.
"""

from __future__ import annotations

from collections import deque

import pytest
import trio
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import RemoteSettingsChanged, SettingsAcknowledged
from h2.exceptions import InvalidSettingsValueError
from h2.settings import SettingCodes, Settings

from hub import HubConfig, InProcessBus
from hub.gateway_io import CompactSettings, Http2Limits, LimitedServer
from hub.testing import MemoryAudit, MemoryDirectory, MemoryJournal, open_memory_hub


def _no_deques(settings: Settings) -> bool:
    return not any(isinstance(values, deque) for values in settings._settings.values())


def test_compact_settings_behave_like_h2s_and_hold_no_deque() -> None:
    initial = {SettingCodes.MAX_CONCURRENT_STREAMS: 2, SettingCodes.INITIAL_WINDOW_SIZE: 1024}
    compact, plain = CompactSettings(False, initial), Settings(False, initial)
    assert dict(compact) == dict(plain)
    for settings in (compact, plain):
        settings[SettingCodes.INITIAL_WINDOW_SIZE] = 4096  # pending until acknowledged
        settings[SettingCodes.MAX_HEADER_LIST_SIZE] = 8192  # a setting new to this side
    assert compact.initial_window_size == plain.initial_window_size == 1024
    with pytest.raises(KeyError):
        compact[SettingCodes.MAX_HEADER_LIST_SIZE]
    changed, expected = compact.acknowledge(), plain.acknowledge()
    assert {k: (c.original_value, c.new_value) for k, c in changed.items()} == {
        k: (c.original_value, c.new_value) for k, c in expected.items()
    }
    assert dict(compact) == dict(plain)
    assert compact.max_header_list_size == 8192
    with pytest.raises(InvalidSettingsValueError):
        compact[SettingCodes.ENABLE_PUSH] = 2
    assert _no_deques(compact)


async def test_the_hub_advertises_its_limits_from_the_first_settings_frame() -> None:
    config = HubConfig(grpc_port=0, grpc_flow_window_bytes=131072, shutdown_grace_s=2)
    async with open_memory_hub(
        config, MemoryDirectory(), MemoryJournal(), audit=MemoryAudit(), bus=InProcessBus()
    ) as hub:
        stream = await trio.open_tcp_stream("127.0.0.1", hub.grpc_port)
        client = H2Connection(H2Configuration(client_side=True))
        client.initiate_connection()  # its settings name MAX_CONCURRENT_STREAMS: new to the hub
        await stream.send_all(client.data_to_send())
        advertised: dict[int, int] = {}
        acknowledged = False
        with trio.fail_after(5):
            while not (advertised and acknowledged):
                for event in client.receive_data(await stream.receive_some(65536)):
                    if isinstance(event, RemoteSettingsChanged):
                        advertised = {k: c.new_value for k, c in event.changed_settings.items()}
                    acknowledged |= isinstance(event, SettingsAcknowledged)
                await stream.send_all(client.data_to_send())
        await stream.aclose()
    assert advertised[SettingCodes.MAX_CONCURRENT_STREAMS] == config.grpc_max_streams_per_connection
    assert advertised[SettingCodes.INITIAL_WINDOW_SIZE] == 131072
    assert advertised[SettingCodes.MAX_HEADER_LIST_SIZE] == config.grpc_max_header_list_bytes


async def test_grpclibs_connection_handlers_are_swept_once_the_set_could_have_doubled() -> None:
    server = LimitedServer([], Http2Limits(65_535, 4, 8_192))
    sweeps = 0
    sweep = server.__gc_collect__

    def counted() -> None:
        nonlocal sweeps
        sweeps += 1
        sweep()

    server.__gc_collect__ = counted  # type: ignore[method-assign]
    for _ in range(10_000):
        server._protocol_factory()
    assert sweeps == 11  # after 10, 20, 39, 77 ... 9,729 connections, not every 10th (1,000)

    for handler in server._handlers:  # every link ends (no stream left)
        handler.close()
    for _ in range(10_240):
        server._protocol_factory()
    assert len(server._handlers) <= 10_240  # the ended 10,000 are gone
