"""The operator's commands are recorded where the engine applied them (issue #23, item 10):
the catalog's ``commands`` (version 4), one row per command once its transaction commits."""

from __future__ import annotations

from decimal import Decimal

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter
from kakashi_tui.trading.commands import Pause
from kakashi_tui.trading.config import KakashiConfig, SimSection
from kakashi_tui.trading.service import TradingService
from tests.conftest import SIM_START_MS, make_engine


def test_a_command_in_a_tick_that_rolled_back_is_recorded_once_at_the_tick_that_kept_it(tmp_path, monkeypatch):
    writer = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"))
    engine = make_engine(tmp_path / "live.db", cfg=KakashiConfig(sim=SimSection(markets=2)), catalog=writer)
    service = TradingService(engine, interval=0, log=lambda _line: None)
    service.submit(Pause("desk"))
    body = engine._tick_body
    calls = []

    def fails_once(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk hiccup")
        return body(*a, **kw)

    monkeypatch.setattr(engine, "_tick_body", fails_once)
    assert service.step() is None  # the pause was applied at its top, then rolled back with it
    assert service.step() is not None and service.step() is not None
    writer.close()
    engine.store.close()
    rows = cat.read_table(tmp_path / "catalog", "commands").to_pylist()
    assert [(r["kind"], r["tick"], r["after_ts"], r["text"]) for r in rows] == [("pause", 1, None, "desk")]


def test_the_writer_keeps_what_a_replay_needs_and_refuses_what_it_cannot_apply(tmp_path):
    w = CatalogWriter(tmp_path / "c")
    T = SIM_START_MS
    assert w.add_command(T, 1, None, "kill", "reason \ud800 from a pipe", source="sim") is None  # escaped, kept
    assert w.add_command(T, 2, T, "set_estimate", "", "KXA-1", Decimal("0.9999999999999999999999"), "sim") is None
    assert w.add_command(T, 2, T, "explode", source="sim") == "command: unknown kind 'explode'"
    assert w.add_command(T, 2, T, "set_estimate", "", "KXA-1", Decimal("1.5"), "sim") == (
        "command: p_hat 1.5 outside [0, 1]"
    )
    assert w.add_command(T, -1, T, "pause", source="sim").startswith("command: tick -1 is not an integer")
    w.close()
    rows = cat.read_table(tmp_path / "c", "commands").to_pylist()
    assert [r["text"] for r in rows] == ["reason \\ud800 from a pipe", ""]
    assert rows[1]["p_hat_exact"] == "0.9999999999999999999999"  # exact, as the replay sets it
