"""Issue #19, "A week, sized": retention. ``[catalog] keep_days`` removes old date folders as
the recorder rolls; ``[store] keep_market_data_days`` prunes old quotes and beliefs at start.
Real engines, real processes, real files."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kakashi_tui.adapters.catalog import CatalogWriter
from kakashi_tui.adapters.queries import connect_readonly, read_status
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.core.models import Estimate
from kakashi_tui.trading.config import KakashiConfig, load_config
from kakashi_tui.trading.runtime import Options, build_service
from tests.clirun import in_process
from tests.conftest import SIM_START_MS, book, make_engine

DAY = 86_400_000


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def test_catalog_keep_days_removes_old_dates_at_a_roll_never_today_nor_ahead(tmp_path):
    """keep_days = 2 keeps today and yesterday (the wall's); a date ahead of the wall (the
    simulator's clock) stays; everything older goes, every table, said in one line."""
    cat = tmp_path / "cat"
    today = SIM_START_MS + 10 * DAY
    notes: list[str] = []
    w = CatalogWriter(cat, roll_s=float("inf"), keep_days=2, wall=lambda: today / 1000, on_note=notes.append)
    for d in (-9, -3, -2, -1, 0, 1):
        w.add_snapshot(book("A", ts=today + d * DAY), "sim", today + d * DAY)
        w.add_estimate(Estimate(ticker="A", p_hat=Decimal("0.5"), source="t", ts=today + d * DAY))
    (cat / "snapshots" / "date=1999-01-01").mkdir(parents=True)
    (cat / "snapshots" / "date=1999-01-01" / "mine.txt").write_text("not Kakashi's")
    w.flush()
    kept = {
        t: sorted(p.name.removeprefix("date=") for p in (cat / t).glob("date=*")) for t in ("snapshots", "estimates")
    }
    assert kept["estimates"] == [_day(today - DAY), _day(today), _day(today + DAY)]
    assert kept["snapshots"] == ["1999-01-01", *kept["estimates"]]  # a folder with a foreign file stays
    assert (cat / "snapshots" / "date=1999-01-01" / "mine.txt").exists()
    assert notes[0].startswith(
        f"catalog: removed 3 day(s) before {_day(today - DAY)} "
        f"({_day(today - 9 * DAY)}..{_day(today - 2 * DAY)}: 6 files"
    )
    assert "under [catalog] keep_days = 2" in notes[0]
    assert any("keeps files Kakashi did not write" in n for n in notes[1:])
    w.close()


def test_catalog_keep_days_is_counted_from_the_newest_date_written_when_it_is_older(tmp_path):
    """A recorder replaying yesterday's clock keeps the days before its own newest, not the wall's."""
    cat = tmp_path / "cat"
    now = SIM_START_MS + 30 * DAY
    w = CatalogWriter(cat, roll_s=float("inf"), keep_days=1, wall=lambda: now / 1000)
    for d in (-12, -11, -10):
        w.add_snapshot(book("A", ts=SIM_START_MS + 20 * DAY + d * DAY), "sim", SIM_START_MS + 20 * DAY + d * DAY)
    w.flush()
    assert [p.name for p in (cat / "snapshots").glob("date=*")] == [f"date={_day(SIM_START_MS + 10 * DAY)}"]
    w.close()


def test_a_recording_run_applies_catalog_keep_days_from_the_config(capfd, tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text("[catalog]\nkeep_days = 1\n[sim]\nstep_seconds = 7200\n")
    db = tmp_path / "k.db"
    old = tmp_path / "catalog" / "snapshots" / "date=2001-02-03"
    old.mkdir(parents=True)
    (old / "part-1.parquet").write_bytes(b"PAR1")
    p = in_process(capfd, "run", "--headless", "--ticks", "3", "--db", str(db), "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert not old.exists()
    assert "catalog: removed 1 day(s) before " in p.stderr and "(2001-02-03: 1 files" in p.stderr
    assert "catalog: removed" in (tmp_path / "kakashi.log").read_text()


@pytest.mark.parametrize("text", ["[catalog]\nkeep_days = 0\n", "[store]\nkeep_market_data_days = -1\n"])
def test_retention_keys_are_bounded(tmp_path, text):
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"keep_\w+ = -?[01]: Input should be greater than or equal to 1"):
        load_config(str(tmp_path / "c.toml"))


def test_store_retention_prunes_old_quotes_and_beliefs_keeping_each_markets_newest(tmp_path):
    db = tmp_path / "k.db"
    e = make_engine(db)
    for _ in range(30):  # half an hour of simulated minutes: positions open, quotes and beliefs stored
        e.tick()
    held = {p.ticker for p in e.account.open_positions()}
    e.store.close()
    assert held
    con = connect_readonly(db)
    try:
        before = read_status(con, db)
        quotes = con.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
        beliefs = con.execute("SELECT COUNT(*) FROM estimates").fetchone()[0]
        markets = con.execute("SELECT COUNT(DISTINCT ticker) FROM snapshots").fetchone()[0]
        newest = con.execute("SELECT MAX(ts) FROM snapshots").fetchone()[0]
    finally:
        con.close()
    s = Store(db)
    try:
        q, b, cut = s.prune_market_data(keep_days=1)
        assert (q, b, cut) == (0, 0, newest - DAY)  # everything is within the day: nothing goes
        # move the clock on: the newest quote a day and a minute later, one market only
        s.db.execute_sql("UPDATE snapshots SET ts = ts - ? WHERE id != (SELECT MAX(id) FROM snapshots)", (DAY,))
        s.db.execute_sql("UPDATE estimates SET ts = ts - ?", (DAY,))
        q, b, _cut = s.prune_market_data(keep_days=1)
    finally:
        s.close()
    con = connect_readonly(db)
    try:
        left = con.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
        assert q == quotes - left > 0
        assert con.execute("SELECT COUNT(DISTINCT ticker) FROM snapshots").fetchone()[0] == markets
        assert b == beliefs - con.execute("SELECT COUNT(*) FROM estimates").fetchone()[0] > 0
        after = read_status(con, db)
    finally:
        con.close()
    assert after.equity_cc == before.equity_cc  # every position is marked as before
    e2 = make_engine(db)
    try:
        assert e2.tick().errors == ()  # and the engine trades on from the kept rows
    finally:
        e2.store.close()


def test_a_run_prunes_the_database_at_start_and_says_so(tmp_path, monkeypatch):
    db = tmp_path / "k.db"
    e = make_engine(db)
    for _ in range(5):
        e.tick()
    e.store.db.execute_sql("UPDATE snapshots SET ts = ts - ? WHERE id < 20", (3 * DAY,))
    e.store.close()
    cfg = KakashiConfig.model_validate({"store": {"keep_market_data_days": 2}})
    said: list[str] = []
    import kakashi_tui.trading.runtime as rt

    monkeypatch.setattr(rt, "warn", said.append)
    _service, close = build_service(Options(db=str(db), seed=7, sim_start_ms=SIM_START_MS), cfg)
    close()
    pruned = [ln for ln in said if "keep_market_data_days = 2" in ln]
    assert len(pruned) == 1 and re.search(r": removed [1-9]\d* quotes and 0 beliefs from before ", pruned[0]), said
