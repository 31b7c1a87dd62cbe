"""The settings a recording keeps (the catalog's ``runs``, issue #23): written as a config file
writes them, read back to the same configuration, and compared with a replay's a line each."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kakashi_tui.core.errors import ConfigError
from kakashi_tui.trading.config import (
    FeesSection,
    FillsSection,
    KakashiConfig,
    RiskSection,
    StrategySection,
    adopt_recorded,
    recorded_notes,
    recorded_settings,
)

RAN = KakashiConfig(
    bankroll=Decimal("250.50"),
    strategy=StrategySection(mode="both", post_tif="gtd", post_expiry_seconds=300, post_only=False),
    fills=FillsSection(insert_latency_ms=250, queue_model="prob"),
    risk=RiskSection(max_open_positions=3, max_quote_age_s=12.5, on_daily_stop="flatten"),
    fees=FeesSection(series={"INX": Decimal("0.035"), 'odd "name"': Decimal("0")}),
)


def test_recorded_settings_read_back_to_the_configuration_that_ran():
    kept = recorded_settings(RAN)
    assert kept["strategy.mode"] == '"both"' and kept["bankroll"] == "250.50"
    assert kept["fees.series"] == '{"INX" = 0.035, "odd \\"name\\"" = 0}'
    assert "strategy.kelly_fraction" not in kept  # unset
    adopted = adopt_recorded(KakashiConfig(db="other.db"), kept)
    assert adopted.engine_config() == RAN.engine_config()
    assert adopted.db == "other.db"  # (only the settings that change decisions and fills)
    assert recorded_notes([kept], adopted) == [] == recorded_notes([kept], RAN)


def test_each_differing_setting_is_one_line_and_an_older_recording_lacks_keys():
    kept = recorded_settings(RAN)
    later = {**kept, "strategy.mode": '"post"', "strategy.gone_key": "1"}
    older = {k: v for k, v in kept.items() if k != "fills.queue_model"}  # before the key: its default
    assert recorded_notes([kept, later, older], KakashiConfig()) == [
        "the recording traded with bankroll = 250.50; this replay uses 1000",
        'the recording traded with [strategy] mode = "both", then "post"; this replay uses "take"',
        'the recording traded with [strategy] post_tif = "gtd"; this replay uses "gtc"',
        "the recording traded with [strategy] post_only = false; this replay uses true",
        "the recording traded with [strategy] post_expiry_seconds = 300; this replay leaves it unset",
        'the recording traded with [fills] insert_latency_ms = 250; this replay uses "auto"',
        'the recording traded with [fills] queue_model = "prob", then "risk_averse"; this replay uses "risk_averse"',
        "the recording traded with [risk] max_open_positions = 3; this replay uses 5",
        "the recording traded with [risk] max_quote_age_s = 12.5; this replay uses 30.0",
        'the recording traded with [risk] on_daily_stop = "flatten"; this replay uses "hold"',
        'the recording traded with [fees] series = {"INX" = 0.035, "odd \\"name\\"" = 0}; this replay uses {}',
        "the recording traded with a setting this Kakashi does not have: strategy.gone_key",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        {"risk.max_open_positions": "500"},  # past the ceiling a later Kakashi holds
        {"strategy.mode": '"sideways"'},
        {"strategy.edge_threshold": "0.05 0.06"},  # not TOML
    ],
)
def test_recorded_settings_this_kakashi_cannot_take_are_refused_in_one_line_and_compared_as_text(bad):
    kept = {**recorded_settings(KakashiConfig()), **bad}
    with pytest.raises(ConfigError, match="^the recorded .* not ones this Kakashi can take"):
        adopt_recorded(KakashiConfig(), kept)
    ((key, text),) = bad.items()
    section, name = key.split(".")
    assert recorded_notes([kept], KakashiConfig()) == [
        f"the recording traded with [{section}] {name} = {text}; this replay uses "
        + str(recorded_settings(KakashiConfig())[key])
    ]
