"""The one query module and the typed control state (#11): report and replay hold no SQL of
their own, and the engine reads and writes controls as typed values, in one query per tick."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.core.errors import StoreError
from tests.conftest import make_engine

ROOT = Path(__file__).resolve().parents[2] / "kakashi_tui"
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET)\b")


@pytest.mark.parametrize(
    "module", ["frontends/report/postmortem.py", "frontends/desk/lookups.py", "adapters/replay.py"]
)
def test_report_and_replay_read_only_through_queries(module):
    text = (ROOT / module).read_text(encoding="utf-8")
    assert not [line for line in text.splitlines() if SQL.search(line)], f"SQL text left in {module}"
    assert ".execute(" not in text


def test_store_controls_are_typed_and_read_in_one_query(store):
    store.set_controls(
        {
            Control.KILL_SWITCH: True,
            Control.KILL_REASON: "why",
            Control.DAY_START_EQUITY: 1234,
            Control.DAY: "2026-01-05",
        }
    )
    seen: list[str] = []
    store.db.connection().set_trace_callback(seen.append)
    got = store.controls(
        [Control.KILL_SWITCH, Control.KILL_REASON, Control.DAY_START_EQUITY, Control.DAY, Control.DAILY_STOP_DAY]
    )
    store.db.connection().set_trace_callback(None)
    assert got == {
        Control.KILL_SWITCH: True,
        Control.KILL_REASON: "why",
        Control.DAY_START_EQUITY: 1234,
        Control.DAY: "2026-01-05",
    }
    assert len([s for s in seen if "FROM control" in s]) == 1
    with pytest.raises(TypeError):
        store.set_control(Control.DAY_START_EQUITY, "1234")  # an int control takes an int
    with pytest.raises(ValueError):
        store.set_control("kill_swich", True)  # only the keys Control names: a typo is a bug
    with pytest.raises(ValueError):
        store.get_control("kill_swich")


def test_engine_ticks_keep_control_values_typed(db_path):
    e = make_engine(db_path)
    try:
        e.tick()
        e.tick()
        assert e._ctl[Control.DAY_START_EQUITY] == e.store.control(Control.DAY_START_EQUITY)
        assert isinstance(e._ctl[Control.DAY_START_EQUITY], int)
        assert e.store.control(Control.TICK_COUNT) == 2 and isinstance(e.store.control(Control.SIM_TICK), int)
    finally:
        e.store.close()


def test_a_control_tampered_mid_run_is_a_corrupt_database_not_a_crash(db_path):
    e = make_engine(db_path)
    try:
        e.tick()
        with sqlite3.connect(db_path) as c:
            c.execute("UPDATE control SET value = 'lots' WHERE key = 'day_start_equity'")
        with pytest.raises(StoreError, match="corrupt database: control row 'day_start_equity'"):
            e.tick()  # the service logs the failed tick with this reason; nothing is written
    finally:
        e.store.close()


def test_queries_read_the_report_rows(db_path):
    e = make_engine(db_path)
    try:
        for _ in range(3):
            e.tick()
    finally:
        e.store.close()
    con = queries.connect_readonly(db_path)
    try:
        ticks = queries.tick_rows(con)
        assert len(ticks) == 3 and all(isinstance(eq, int) for _ts, eq, _c in ticks)
        assert queries.initial_deposit(con) is not None
        assert queries.first_ledger_ts(con) == queries.initial_deposit(con)[0]
        assert len(queries.market_rows(con)) > 0
        kinds = {row[1] for row in queries.market_data_rows(con)}
        assert 0 in kinds
        assert all(k in queries.REPORT_EVENT_KINDS for _ts, k, _d in queries.control_events(con))
    finally:
        con.close()
