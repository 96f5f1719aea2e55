"""`api.ws_limits` without sockets: the message budget's verdicts, and the settings' checks."""

from __future__ import annotations

import pytest

from api.config import ApiConfig
from api.ws_frames import ClientError
from api.ws_limits import MessageBudget, Verdict, check_subscription_room
from hub import ConfigError, load_config
from tests.support.node import JWT_SECRET


def test_a_burst_is_acted_on_then_refusals_are_told_once_then_closed() -> None:
    budget = MessageBudget(rate_per_s=2.0, burst=3, now=0.0)
    assert [budget.take(0.0) for _ in range(3)] == [Verdict.ACT] * 3
    assert budget.take(0.0) is Verdict.REFUSE_AND_TELL
    assert budget.take(0.0) is Verdict.REFUSE
    assert budget.take(0.0) is Verdict.CLOSE  # 3 (the burst) refusals unforgiven


def test_tokens_refill_at_the_rate_and_refusals_are_forgiven_one_a_second() -> None:
    budget = MessageBudget(rate_per_s=2.0, burst=3, now=0.0)
    for _ in range(3):
        budget.take(0.0)
    assert budget.take(0.0) is Verdict.REFUSE_AND_TELL
    assert budget.take(0.5) is Verdict.ACT  # one token refilled in 0.5 s
    assert budget.take(0.5) is Verdict.REFUSE  # still the same run: not told again
    # Both refusals are forgiven 2 s later: the bucket is full again and a new run is told.
    verdicts = [budget.take(2.5) for _ in range(5)]
    assert verdicts == [Verdict.ACT] * 3 + [Verdict.REFUSE_AND_TELL, Verdict.REFUSE]


def test_a_slow_steady_client_is_never_refused() -> None:
    budget = MessageBudget(rate_per_s=20.0, burst=100, now=0.0)
    assert all(budget.take(i * 0.05) is Verdict.ACT for i in range(10_000))


def test_the_refusal_says_what_to_change() -> None:
    error = MessageBudget(rate_per_s=20.0, burst=100, now=0.0).refusal()
    assert error.frame == {
        "type": "error",
        "code": "rate_limited",
        "message": "more than 20 messages per second (ws_messages_per_s, 100 at once: "
        "ws_message_burst): this one and the next are dropped until you slow down; keep on "
        "and the connection closes with 4429",
    }


def test_the_subscription_cap() -> None:
    check_subscription_room(2, 3, "fleet")
    with pytest.raises(ClientError) as refused:
        check_subscription_room(3, 3, "fleet")
    assert refused.value.frame["code"] == "too_many_subscriptions"
    assert "(ws_max_subscriptions)" in str(refused.value)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        (
            "ws_max_subscriptions",
            "0",
            "ws_max_subscriptions must be a finite number greater than 0",
        ),
        ("ws_messages_per_s", "0", "ws_messages_per_s must be a finite number greater than 0"),
        ("ws_message_burst", "-1", "ws_message_burst must be a finite number greater than 0"),
        (
            "ws_max_concurrent_reads",
            "0",
            "ws_max_concurrent_reads must be a finite number greater than 0",
        ),
    ],
)
def test_a_bad_limit_is_refused_with_its_setting_named(
    setting: str, value: str, message: str
) -> None:
    environ = {f"SOVD_HUB_{setting.upper()}": value, "SOVD_HUB_JWT_SECRET": JWT_SECRET}
    with pytest.raises(ConfigError, match=message):
        load_config(ApiConfig, environ=environ)


def test_the_limits_are_read_from_the_environment() -> None:
    environ = {
        "SOVD_HUB_JWT_SECRET": JWT_SECRET,
        "SOVD_HUB_WS_MAX_SUBSCRIPTIONS": "50",
        "SOVD_HUB_WS_MESSAGES_PER_S": "5.5",
        "SOVD_HUB_WS_MESSAGE_BURST": "30",
        "SOVD_HUB_WS_MAX_CONCURRENT_READS": "2",
    }
    config = load_config(ApiConfig, environ=environ)
    assert (
        config.ws_max_subscriptions,
        config.ws_messages_per_s,
        config.ws_message_burst,
        config.ws_max_concurrent_reads,
    ) == (50, 5.5, 30, 2)
