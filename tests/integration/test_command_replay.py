"""The operator's commands replay where the live run applied them (issue #23, item 10): a
recorded simulator run with a p̂ edit, a pause and a resume, a ``kakashi kill`` from another
process and a re-arm, and flattens (one at the top of a tick, one between ticks, one after the
last tick) replays with the row engine and the columnar path to the same decisions, fills,
ledger and cash. Without its ``commands`` table, or as an older catalog that has none, the same
recording replays as a run in which the operator did nothing."""

from __future__ import annotations

import shutil
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter
from kakashi_tui.adapters.columnar import Filters, Timeline
from kakashi_tui.adapters.source import CommandRecord
from kakashi_tui.trading.commands import Flatten, Pause, Rearm, Resume, SetEstimate, from_record, record_of
from kakashi_tui.trading.config import KakashiConfig, SimSection
from kakashi_tui.trading.requests import send_request
from kakashi_tui.trading.service import TradingService
from tests.clirun import in_process
from tests.conftest import SIM_START_MS, make_engine
from tests.integration.test_columnar import cash_of, run
from tests.integration.test_replay import tables

TICKS = 100
CFG = KakashiConfig()  # (the CLI's replay reads the same defaults)


def record(folder, commands=True):
    """TICKS simulator ticks through the trading service, recorded; with ``commands`` the operator
    acts on the way. (live db, catalog, the market whose p̂ was set)"""
    root, db = folder / "catalog", folder / "live.db"
    writer = CatalogWriter(root, roll_s=float("inf"), max_rows=600)  # several segments
    engine = make_engine(db, cfg=CFG, catalog=writer)
    service = TradingService(engine, interval=0)
    edited = ""
    for i in range(TICKS):
        n = i + 1  # the tick about to run
        if commands:
            if n == 21:  # queued, applied at the top of tick 21: slots freed, a new belief on a free market
                service.submit(Flatten())
                edited = sorted(set(engine.quotes) - engine.account.tickers_held())[0]
                service.submit(SetEstimate(edited, Decimal("0.99")))
            if n == 31:  # between ticks 30 and 31
                service.submit(Pause())
                assert service.apply_pending() == 1
            if n == 41:
                service.submit(Resume())
            if n == 51:  # another process's `kakashi kill`: adopted at the top of tick 51
                assert "next tick" in send_request(str(db), "kill", "cron: spread too wide")
            if n == 66:
                service.submit(Rearm())
            if n == 81:
                service.submit(Flatten("hotkey"))
                assert service.apply_pending() == 1
        assert service.step() is not None
    if commands:  # after the last tick: a replay applies it once the catalog is played out
        service.submit(Flatten("before quitting"))
        assert service.apply_pending() == 1
    writer.close()
    engine.store.close()
    return db, root, edited


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record(tmp_path_factory.mktemp("commanded"))


def test_a_run_the_operator_acted_on_replays_with_the_same_decisions_fills_and_ledger(recorded, tmp_path, capfd):
    db, root, edited = recorded
    live = tables(db)
    # each command changed the run: the flattens sold, the p̂ bought, the pause and kill held trading
    sells = [f for f in live["fills"] if f[3] == "sell"]
    assert len({f[0] for f in sells}) == 3, sells  # at tick 21's top, between 80 and 81, after 100
    assert any(d[2] == edited and d[7] for d in live["decisions"]), "the operator's p̂ bought nothing"
    assert not [d for d in live["decisions"] if 31 <= d[1] <= 40], "decisions while paused"
    assert any(d[8].startswith("kill switch") for d in live["decisions"] if 51 <= d[1] < 66)
    recorded_kinds = [r["kind"] for r in cat.read_table(root, "commands").to_pylist()]
    assert recorded_kinds == ["flatten", "set_estimate", "pause", "resume", "kill", "rearm", "flatten", "flatten"]

    run(tmp_path / "rows.db", root, CFG, columnar=False, start_ms=SIM_START_MS)
    assert tables(tmp_path / "rows.db") == live  # decisions (tick and reason), fills, ledger
    assert cash_of(tmp_path / "rows.db") == cash_of(db)
    p = in_process(capfd, "replay", "--catalog", str(root), "--db", str(tmp_path / "col.db"))
    assert p.returncode == 0, p.stderr
    assert "8 operator command(s) applied where the run applied them" in p.stdout, p.stdout
    col = tables(tmp_path / "col.db")
    assert col["decisions"] == live["decisions"] and col["fills"] == live["fills"]
    assert col["ledger"][1:] == live["ledger"][1:]  # (the deposit is dated by the replay's start)
    assert cash_of(tmp_path / "col.db") == cash_of(db)

    # without its commands table the same recording replays to another run (the test can fail)
    bare = tmp_path / "bare"
    shutil.copytree(root, bare)
    shutil.rmtree(bare / "commands")
    run(tmp_path / "bare.db", bare, CFG, start_ms=SIM_START_MS)
    without = tables(tmp_path / "bare.db")
    assert without["decisions"] != live["decisions"] and without["fills"] != live["fills"]


def test_an_older_catalog_without_the_table_replays_as_its_run_ran(recorded, tmp_path):
    """Version 3 files (no ``commands`` folder) read as holding no command: the replay is the
    run of the same market data in which the operator did nothing."""
    _db, root, _edited = recorded
    v3 = tmp_path / "v3"
    shutil.copytree(root, v3)
    shutil.rmtree(v3 / "commands")
    for f in sorted(v3.rglob("*.parquet")):  # as version 3 wrote them
        t = pq.read_table(f)
        pq.write_table(t.replace_schema_metadata({**t.schema.metadata, cat.VERSION_KEY.encode(): b"3"}), f)
        assert cat.file_version(pq.read_schema(f)) == 3
    assert cat.read_table(v3, "commands").num_rows == 0
    plain, _root, _ = record(tmp_path / "plain", commands=False)  # (the market data does not depend on trading)
    run(tmp_path / "v3.db", v3, CFG, start_ms=SIM_START_MS)
    assert tables(tmp_path / "v3.db") == tables(plain)


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
    (kill, belief) = Timeline(tmp_path / "c").commands
    assert from_record(belief) == SetEstimate("KXA-1", Decimal("0.9999999999999999999999"))
    assert from_record(kill).reason == "reason \\ud800 from a pipe"


def test_a_replay_applies_each_command_before_the_first_tick_after_the_one_it_followed(tmp_path):
    """``after_ts`` orders them (applied order), not ``ts``: a queued command's time may be later
    than that of a request adopted after it in the same tick."""
    T = SIM_START_MS
    w = CatalogWriter(tmp_path / "c")
    recs = [
        record_of(Pause("desk"), T, 1, None),  # before the first tick
        record_of(Resume("desk"), T + 1_050, 3, T + 1_000),  # queued: applied at the wall clock
        record_of(Pause("cli"), T + 1_010, 3, T + 1_000),  # a request adopted after it, at the tick's time
        record_of(Flatten("desk"), T + 2_000, 4, T + 2_000),  # between ticks 3 and 4
    ]
    for r in recs:
        assert w.add_command(r.ts, r.tick, r.after_ts, r.kind, r.text, r.ticker, r.p_hat, "kalshi") is None
    assert w.add_command(T, 1, 5, "pause", source="kalshi") == (
        "command: ts 5 is outside 2000-01-01..2100-01-01 in epoch ms"  # (an after_ts that is no time)
    )
    w.close()
    # a foreign file's row the engine could not apply is rejected with its reason, the rest played
    foreign = pa.table({"ts": [T], "tick": [1], "kind": ["explode"], "source": ["x"]})
    pq.write_table(foreign, tmp_path / "c" / "commands" / "date=2026-01-05" / "part-9999999999999-1-1.parquet")
    tl = Timeline(tmp_path / "c")
    assert [why for why, _row in tl.pending_rejects] == ["command record of unknown kind 'explode'"]
    assert tl.commands_before(T) == recs[:1]
    assert tl.commands_before(T + 1_000) == []  # (the tick at 1_000 came before them)
    assert tl.commands_before(T + 1_500) == recs[1:3]
    assert tl.commands_before(T + 3_000) == recs[3:]
    assert tl.commands_before(None) == []
    assert isinstance(recs[0], CommandRecord)
    # a window: what came before it stands at its first tick; what came after it is left out,
    # and so is a p̂ on a market left out
    w2 = CatalogWriter(tmp_path / "c")
    assert w2.add_command(T + 1, 1, None, "set_estimate", "", "KXB-2", Decimal("0.5"), "kalshi") is None
    w2.close()
    early = Timeline(tmp_path / "c", Filters(since_ms=T + 1_500, until_ms=T + 1_500, tickers={"KXA-1"}))
    assert early.commands_before(T + 1_500) == recs[:3]
    assert early.commands_before(None) == []
