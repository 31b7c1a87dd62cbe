"""The trading service: the one owner of the running engine (commands, failure policy, stop,
views), driven with real parts: the simulator, SQLite in a tmp dir, real threads and a
second real process."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from kakashi_tui.adapters.queries import read_ledger
from kakashi_tui.adapters.source import FetchBatch, Source
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.ledger import Account
from kakashi_tui.core.risk import HARD_MAX_OPEN_POSITIONS
from kakashi_tui.frontends.report.postmortem import gather
from kakashi_tui.trading.commands import Flatten, Kill, Pause, Quit, Rearm, ReloadBeliefs, Resume, SetEstimate
from kakashi_tui.trading.service import TradingService, send_request
from tests.conftest import make_engine

ROOT = Path(__file__).resolve().parents[2]

SECOND_PROCESS = """
import random, sys, time
from kakashi_tui.trading.service import send_request
db, n = sys.argv[1], int(sys.argv[2])
r = random.Random(11)
for i in range(n):
    send_request(db, r.choice(["kill", "pause", "resume"]), f"p2-{i}")
    time.sleep(r.uniform(0, 0.03))
print("done")
"""


def wait_until(predicate, timeout: float = 10.0) -> bool:
    """Poll a condition (never a fixed sleep): True as soon as it holds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def pending_requests(db) -> list[tuple[int, str, str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT id, kind, arg FROM requests WHERE applied_tick IS NULL").fetchall()
    finally:
        con.close()


def _command(r: random.Random, tag: str, tickers: list[str]):
    """A random command of every kind but Quit, tagged so its event can be found."""
    kind = r.choice([Pause, Resume, Kill, Rearm, Flatten, ReloadBeliefs, SetEstimate])
    if kind is SetEstimate:
        return SetEstimate(r.choice(tickers), Decimal(r.randint(1, 99)) / 100)
    return kind(tag)


def test_stress_every_command_from_three_places_applied_once_in_order(tmp_path):
    db = tmp_path / "k.db"
    engine = make_engine(db)
    tickers = [f"SIM-{i}" for i in range(8)]
    for _ in range(5):
        engine.tick()
    tickers = sorted(engine.markets) or tickers
    service = TradingService(engine, interval=0.0)
    service.start()
    submitted: dict[int, object] = {}  # seq -> command, from every in-process submitter
    tickets: dict[int, object] = {}
    lock = threading.Lock()

    def submit_many(name: str, seed: int, n: int) -> None:
        r = random.Random(seed)
        for i in range(n):
            cmd = _command(r, f"{name}-{i}", tickers)
            t = service.submit(cmd)
            with lock:
                submitted[t.seq] = cmd
                tickets[t.seq] = t
            time.sleep(r.uniform(0, 0.01))

    proc = subprocess.Popen(
        [sys.executable, "-c", SECOND_PROCESS, str(db), "30"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    second = threading.Thread(target=submit_many, args=("t2", 2, 120))
    second.start()
    submit_many("ui", 1, 120)  # this thread plays the UI thread
    second.join()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # the loop adopts the second process's last requests at its next tick
    assert wait_until(lambda: not pending_requests(db))
    last = service.submit(Quit("ui"))
    assert service.finished.wait(10)
    assert service.stop()
    assert last.done()

    # zero failed ticks, and it kept ticking through all of it
    assert service.stats.failed_ticks == 0 and service.stats.ticks > 10
    # every in-process command applied exactly once, in queue order
    assert service.applied == sorted(submitted) + [last.seq]
    assert len(set(service.applied)) == len(service.applied)

    con = sqlite3.connect(db)
    events = con.execute(
        "SELECT kind, detail FROM events WHERE kind IN "
        "('pause', 'resume', 'kill_switch', 'rearm', 'flatten', 'reload_beliefs') ORDER BY id"
    ).fetchall()

    def tag_of(kind: str, detail: str) -> str:
        return detail.rsplit("(", 1)[-1].rstrip(")") if kind in ("flatten", "reload_beliefs") else detail

    tags = [tag_of(k, d) for k, d in events]
    in_process = [getattr(c, "origin", getattr(c, "reason", None)) for _s, c in sorted(submitted.items())]
    in_process = [t for t in in_process if t is not None]
    assert [t for t in tags if t.startswith(("ui-", "t2-"))] == in_process  # once each, in order
    assert [t for t in tags if t.startswith("p2-")] == [f"p2-{i}" for i in range(30)]  # the other process's too
    assert con.execute("SELECT COUNT(*) FROM requests WHERE applied_tick IS NULL").fetchone()[0] == 0
    # (a market that closed by then takes no p̂: refused, its ticket says None)
    estimates = [c for s, c in sorted(submitted.items()) if isinstance(c, SetEstimate) and tickets[s].result()]
    assert estimates
    stored = con.execute("SELECT ticker, p_hat FROM estimates WHERE source = 'operator' ORDER BY id").fetchall()
    assert [(t, round(p, 2)) for t, p in stored] == [(c.ticker, float(c.p_hat)) for c in estimates]

    # the ledger holds: it replays without error, no market held twice, caps kept
    acct = Account.from_entries(read_ledger(con))
    assert acct.cash_cc >= 0
    held = [p.ticker for p in acct.open_positions()]
    assert len(held) == len(set(held)) <= HARD_MAX_OPEN_POSITIONS
    # memory and disk agree on the flags at the end
    ctl = dict(con.execute("SELECT key, value FROM control"))
    assert (ctl.get("kill_switch") == "1") == engine.killed
    assert (ctl.get("paused") == "1") == engine.paused
    con.close()
    assert gather(db).breaches == []
    engine.store.close()


def test_kill_is_in_force_at_once_and_stored_by_the_next_tick_once(tmp_path):
    engine = make_engine(tmp_path / "k.db")
    service = TradingService(engine)
    service.step()
    service.submit(Kill("desk"))
    assert engine.killed  # before any tick: the gate reads this flag
    assert engine.store.get_control("kill_switch") is None
    report = service.step()
    assert report is not None and all(not d.accepted for d in report.decisions)
    assert engine.store.get_control("kill_switch") == "1" and engine.store.get_control("kill_reason") == "desk"
    service.step()
    n = engine.store.db.execute_sql("SELECT COUNT(*) FROM events WHERE kind = 'kill_switch'").fetchone()[0]
    assert n == 1
    engine.store.close()


def test_a_failed_tick_is_retried_and_n_in_a_row_throw_the_kill_switch(tmp_path):
    engine = make_engine(tmp_path / "k.db")
    lines: list[str] = []
    service = TradingService(engine, max_consecutive_failures=3, log=lines.append)
    real = engine.apply_batch
    failing = {"n": 2}

    def flaky(*a, **k):
        if failing["n"] > 0:
            failing["n"] -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return real(*a, **k)

    engine.apply_batch = flaky
    assert service.step() is None and service.step() is None  # logged, retried
    assert service.step() is not None and not engine.killed  # two in a row are below the limit
    assert [ln for ln in lines if "tick failed: OperationalError: disk I/O error" in ln] and len(lines) == 2
    assert service.stats.failed_ticks == 2 and service.stats.consecutive_failures == 0
    failing["n"] = 3
    for _ in range(3):
        assert service.step() is None
    assert engine.killed and "3 failed ticks in a row" in engine.flags.kill_reason
    assert service.step() is not None  # the next tick that commits stores the kill with its reason
    assert engine.store.get_control("kill_switch") == "1"
    assert "disk I/O error" in engine.store.get_control("kill_reason")
    engine.store.close()


def test_an_engine_that_keeps_failing_backs_off_and_does_not_flood_the_log(tmp_path):
    # CI hung here once: at interval 0 a broken engine failed ticks flat out after the kill,
    # and each failure's line flooded the desk's message queue faster than it could drain.
    engine = make_engine(tmp_path / "k.db")
    lines: list[str] = []
    service = TradingService(engine, interval=0, log=lines.append)

    def broken(*_a, **_k):
        raise sqlite3.OperationalError("disk I/O error")

    engine.apply_batch = broken
    assert [service.retry_delay()] == [0]  # no failure yet: the interval
    delays = []
    for _ in range(12):
        service.step()
        delays.append(service.retry_delay())
    assert delays[:4] == [0.05, 0.1, 0.2, 0.4] and delays[-1] == 5.0  # doubling, capped
    assert engine.killed
    failed = [ln for ln in lines if ln.startswith("tick failed")]
    assert len(failed) == 6  # 1-5, then only the 8th (thinned past the limit)
    assert failed[-1].endswith("(8 in a row)")
    service.start()
    assert wait_until(lambda: service.heartbeat().phase == "waiting")
    hb = service.heartbeat()
    assert hb.due_ms - hb.phase_since_ms == 5_000  # the thread waits out its 5 s back-off: no spinning
    assert service.stats.failed_ticks == 13 and service.heartbeat().phase == "waiting"
    assert service.stop()
    engine.store.close()


def test_a_command_in_a_failed_tick_is_applied_by_the_next_once(tmp_path):
    engine = make_engine(tmp_path / "k.db")
    service = TradingService(engine)
    real = engine._tick_body
    calls = {"n": 0}

    def body(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.OperationalError("database is locked")
        return real(*a, **k)

    engine._tick_body = body
    t = service.submit(Pause("desk"))
    assert service.step() is None and not t.done()  # rolled back with its tick: still queued
    assert service.step() is not None and t.done() and service.applied == [t.seq]
    n = engine.store.db.execute_sql("SELECT COUNT(*) FROM events WHERE kind = 'pause'").fetchone()[0]
    assert n == 1 and engine.store.get_control("paused") == "1"
    engine.store.close()


def test_run_here_commits_ticks_in_groups_a_failed_tick_alone_and_a_command_at_once(tmp_path):
    # how a replay runs: ticks written in groups; what another connection sees is what committed
    db = tmp_path / "k.db"
    engine = make_engine(db)
    service = TradingService(engine, log=lambda _line: None)
    seen: list[tuple[int, int]] = []  # (tick, ticks committed when its report came)
    tickets = []

    def look(report) -> None:
        con = sqlite3.connect(db)
        try:
            seen.append((report.tick, con.execute("SELECT COUNT(*) FROM ticks").fetchone()[0]))
        finally:
            con.close()
        if report.tick == 8:
            tickets.append(service.submit(Pause("desk")))  # applied by tick 9, committed with it

    service.on_report(look)
    real = engine._tick_body
    calls = {"n": 0}

    def body(batch, now, *a, **k):
        calls["n"] += 1
        if calls["n"] == 6:  # writes, then fails: its savepoint is rolled back, not the group
            engine.store.add_event(now, "half-done", "")
            raise sqlite3.OperationalError("disk I/O error")
        return real(batch, now, *a, **k)

    engine._tick_body = body
    assert service.run_here(lambda: calls["n"] < 11, commit_every=4) == 11
    assert seen == [(1, 0), (2, 0), (3, 0), (4, 0), (5, 4), (6, 4), (7, 4), (8, 7), (9, 7), (10, 9)]
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*), MAX(tick) FROM ticks").fetchone() == (10, 10)  # the last group too
    assert con.execute("SELECT COUNT(*) FROM events WHERE kind = 'half-done'").fetchone() == (0,)
    assert con.execute("SELECT COUNT(*) FROM events WHERE kind = 'pause'").fetchone() == (1,)
    con.close()
    assert tickets[0].done() and service.stats.failed_ticks == 1
    engine.store.close()


def test_run_here_in_groups_writes_each_markets_newest_quote_of_a_commit_and_decides_alike(tmp_path):
    # a replay committing many ticks at once keeps every quote in its input, and in the
    # database each market's newest of each commit; what it decides and books is the same
    def run(name: str, commit_every: int) -> sqlite3.Connection:
        engine = make_engine(tmp_path / name)
        service = TradingService(engine, log=lambda _line: None)
        assert service.run_here(lambda: engine.tick_count < 30, commit_every=commit_every) == 30
        assert engine._unwritten is None  # off again once the replay is done
        engine.store.close()
        return sqlite3.connect(tmp_path / name)

    every, grouped = run("every.db", 1), run("grouped.db", 8)
    for sql in (
        "SELECT ts, tick, ticker, side, contracts_hundredths, limit_price_cc, accepted, reason FROM decisions",
        "SELECT ts, kind, ticker, amount_cc, key FROM ledger",
        "SELECT tick, saved, equity_cc FROM ticks",
    ):
        assert every.execute(sql + " ORDER BY id").fetchall() == grouped.execute(sql + " ORDER BY id").fetchall()
    quote = "SELECT ticker, ts, yes_bid_cc, yes_ask_cc, last_cc, volume_hundredths, book FROM snapshots"
    kept = grouped.execute(quote).fetchall()
    # each commit (ticks 1-8, 9-16, 17-24, 25-30) holds each market's newest quote of its ticks
    # (a quote's tick, where every quote is written in its tick: rows in id order, ``saved`` a tick)
    tick_of = [t for t, saved in every.execute("SELECT tick, saved FROM ticks ORDER BY tick") for _ in range(saved)]
    rows = every.execute(quote + " ORDER BY id").fetchall()
    assert len(tick_of) == len(rows)
    newest = {((t - 1) // 8, row[0]): row for t, row in zip(tick_of, rows)}
    assert 0 < len(kept) < len(rows) and sorted(kept) == sorted(newest.values())
    every.close()
    grouped.close()


class HungSource(Source):
    """A feed whose fetch never returns by itself (no stop() either: the worst case)."""

    name = "hung"

    def __init__(self, inner) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def now_ms(self) -> int:
        return self.inner.now_ms()

    def fetch(self) -> FetchBatch:
        self.entered.set()
        self.release.wait(30)
        return FetchBatch(errors=["stopped"])

    def close(self) -> None:
        pass


def test_stop_is_prompt_with_a_hung_feed_and_applies_what_is_queued(tmp_path):
    engine = make_engine(tmp_path / "k.db")
    engine.tick()
    hung = HungSource(engine.source)
    engine.source = hung
    service = TradingService(engine, interval=0)
    service.start()
    assert hung.entered.wait(5)
    service.submit(Kill("before quit"))
    t0 = time.monotonic()
    ended = service.stop()
    assert time.monotonic() - t0 < 2.0 and not ended  # the thread is abandoned, not waited for
    assert engine.store.get_control("kill_switch") == "1"  # the queued kill was stored by stop()
    assert service.step() is None  # after stop nothing writes
    hung.release.set()
    engine.store.close()


def test_stop_calls_the_sources_stop(tmp_path):
    engine = make_engine(tmp_path / "k.db")

    class Stoppable(HungSource):
        def stop(self) -> None:
            self.release.set()

    src = Stoppable(engine.source)
    engine.source = src
    service = TradingService(engine, interval=0)
    service.start()
    assert src.entered.wait(5)
    assert service.stop()  # the fetch returned at once: the thread ended in time
    engine.store.close()


def test_requests_from_another_process_with_no_engine_are_applied_at_once(tmp_path):
    db = tmp_path / "k.db"
    make_engine(db).store.close()
    assert "no engine" in send_request(str(db), "pause", "cli")
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM control WHERE key = 'paused'").fetchone() == ("1",)
    assert con.execute("SELECT COUNT(*) FROM requests WHERE applied_tick IS NULL").fetchone() == (0,)
    con.close()
    engine = make_engine(db)
    assert engine.paused  # a starting engine reads it
    assert "next tick" in send_request(str(db), "kill", "cron")  # with an engine: a request row
    assert not engine.killed
    service = TradingService(engine)
    service.step()
    assert engine.killed and engine.flags.kill_reason == "cron"
    engine.store.close()


def test_one_writer_by_file_identity(tmp_path):
    db = tmp_path / "k.db"
    first = Store(db)
    try:
        link = tmp_path / "sym.db"
        link.symlink_to(db)
        hard = tmp_path / "hard.db"
        hard.hardlink_to(db)
        for other in (db, link, hard):
            with pytest.raises(Exception, match="already writing"):
                Store(other, lock_wait=0)
    finally:
        first.close()
    Store(tmp_path / "hard.db", lock_wait=0).close()  # free again once the first writer closes


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path):
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE people (name TEXT)")
    con.execute("INSERT INTO people VALUES ('ada')")
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(Exception, match="not a Kakashi database"):
        Store(db)
    assert db.read_bytes() == before and not Path(str(db) + "-wal").exists()


def test_a_newer_schema_is_refused_before_anything_is_written(tmp_path):
    db = tmp_path / "k.db"
    make_engine(db).store.close()
    con = sqlite3.connect(db)
    con.execute("UPDATE control SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(Exception, match="schema version 99, newer"):
        Store(db)
    assert db.read_bytes() == before
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM control WHERE key = 'schema_version'").fetchone() == ("99",)
    con.close()


def test_a_database_remembering_other_settings_says_so(tmp_path, capsys):
    from kakashi_tui.trading.config import KakashiConfig, SimSection
    from kakashi_tui.trading.runtime import Options, build_service

    db = tmp_path / "k.db"
    make_engine(db).store.close()  # 8 markets, $1,000.00
    cfg = KakashiConfig.model_validate({"sim": {"markets": 12}, "bankroll": "5000"})
    service, close = build_service(Options(db=str(db)), cfg)
    try:
        assert any("remembers [sim] markets = 8; using 12 from the config file" in n for n in service.notes)
        assert any("was funded with $1,000.00" in n for n in service.notes)
        assert service.step() is not None
    finally:
        close()
    err = capsys.readouterr().err
    assert err.count("remembers [sim] markets") == 1
    # asked for nothing: the database's memory is used, silently
    service, close = build_service(Options(db=str(db)), KakashiConfig(sim=SimSection()))
    assert service.notes == []
    close()


def test_while_it_runs_the_collector_runs_in_small_pieces_and_is_put_back(tmp_path):
    """Issue #19: at 5,000 markets a middle collection under (20,000, 10, 10) scanned up to
    200,000 objects (~100 ms, a desk stall each) and a full one came every ~25 ticks. While the
    service's thread runs, every generation's threshold is the service's; stop puts them back."""
    import gc

    from kakashi_tui.trading.service import FRONT_END_GC_THRESHOLDS

    before = gc.get_threshold()
    service = TradingService(make_engine(tmp_path / "k.db"), interval=0.01)
    service.start()
    try:
        assert wait_until(lambda: service.stats.ticks >= 1)
        assert gc.get_threshold() == FRONT_END_GC_THRESHOLDS
        young, middle, full = FRONT_END_GC_THRESHOLDS
        assert young * middle <= 60_000  # a middle collection scans at most this many new objects
        assert young * middle * full >= 10_000_000  # allocations between full collections
    finally:
        service.stop()
        service._engine.store.close()
    assert gc.get_threshold() == before
