"""Hostile input against the market-data catalog (issue #20): WebSocket rows that would blind
the engine, rows dated ahead that would poison a replay's clock, segments `catalog info`
must report, and the small data rules (exact beliefs, imports run twice, a market listed
three times in one page)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter, Recorder, read_table, rebuild_books
from kakashi_tui.adapters.columnar import Timeline
from kakashi_tui.core.models import Estimate
from kakashi_tui.core.timeguard import MAX_TS
from tests.clirun import in_process
from tests.conftest import SIM_START_MS, make_engine
from tests.integration.loopback_ws import signed_loopback, wait_for
from tests.integration.test_columnar import record_sim, run
from tests.integration.test_replay import tables

KAKASHI = [sys.executable, "-m", "kakashi_tui"]
TICKERS = ("KXFAKE-26JAN05-T00", "KXFAKE-26JAN05-T01")
Y2099_MS = 4_070_908_800_000  # 2099-01-01
Y9999_MS = 253_402_214_400_000  # 9999-12-31


def rejected(db):
    c = sqlite3.connect(db)
    try:
        return dict(c.execute("SELECT reason, count FROM rejected_rows").fetchall())
    finally:
        c.close()


# -- 1. one WebSocket message cannot blind the engine ---------------------------------------------
def test_hostile_websocket_rows_are_rejected_alone_and_the_feed_records_on(tmp_path, monkeypatch):
    """A trade print with ts 10^30, a 30-digit count, an ANSI ticker, an escape code as taker
    side, a date of 9999-12-31 or two days ahead, and a delta of a 30-digit count: each is
    refused alone (a rejected row with its reason, or a book rebuilt from a fresh snapshot);
    every pass after them still saves its REST quotes, segments keep rolling, and the good
    rows around them are in the catalog."""
    from kakashi_tui.trading.runtime import Options, build_collector

    root = tmp_path / "catalog"
    now_s = int(time.time())
    hostile = [
        {"ts": 10**30, "trade_id": "h-ts"},
        {"count_fp": "9" * 30 + ".00", "trade_id": "h-count"},
        {"market_ticker": "KXFAKE-26JAN05-T00\x1b[31m", "trade_id": "h-ansi"},
        {"taker_side": "\x1b]0;owned\x07", "trade_id": "h-side"},
        {"ts": Y9999_MS // 1000, "trade_id": "h-9999"},
        {"ts": now_s + 2 * 86_400, "trade_id": "h-ahead"},
    ]
    errors: list[str] = []
    saved_after: list[int] = []
    with signed_loopback(tmp_path, monkeypatch, TICKERS, interval=0.005, roll_seconds=0.05) as (ws, cfg):
        opts = Options(source="kalshi", db=str(tmp_path / "k.db"), tickers=list(TICKERS), catalog=str(root))
        service, rec, close = build_collector(opts, cfg)

        def step():
            tickers, _rejected, errs = service.collect()
            errors.extend(errs)
            return tickers

        try:
            feed = service._engine.source.inner.feed  # (the test looks inside; front-ends never do)
            assert wait_for(lambda: feed.live and len(feed.books()) == 2, step=step)
            ws.send_trade(ts=now_s, trade_id="good-before")
            for h in hostile:
                ws.send_trade(**h)
            ws.send_trade(ts=now_s, trade_id="good-after")
            ws.malformed("delta-huge")
            assert wait_for(lambda: feed.health.rejected >= len(hostile) and feed.health.malformed >= 1, step=step)
            files = rec.writer.files_written
            for _ in range(3):  # passes after the hostile rows: each still saves Kalshi's REST quotes
                saved_after.append(len(step()))
            assert wait_for(lambda: rec.writer.files_written > files + 2, step=step)  # segments still roll
            ws.paused = True
            assert wait_for(
                lambda: all(t in feed.books() and ws.book(t) == vars_of(feed.books()[t]) for t in TICKERS), step=step
            )
            step()
            held = {t: vars_of(b) for t, b in feed.books().items()}
        finally:
            close()
    assert not errors, errors
    assert all(n == len(TICKERS) for n in saved_after)
    trades = read_table(root, "trades").to_pylist()
    ids = {r["trade_id"] for r in trades}
    assert {"good-before", "good-after"} <= ids and not ids & {h["trade_id"] for h in hostile}
    assert all(r["ticker"] in TICKERS and r["taker_side"] in ("yes", "no") for r in trades)
    assert all(0 < r["count_hundredths"] <= cat.MAX_COUNT_HUNDREDTHS and r["ts"] < MAX_TS for r in trades)
    assert not list(root.glob("*/date=9999-*")) and not list(root.glob("*/date=2*-*-*/.*.tmp"))
    book = read_table(root, "book_deltas").to_pylist()
    assert book and all(
        r["delta_hundredths"] is None or abs(r["delta_hundredths"]) <= cat.MAX_COUNT_HUNDREDTHS for r in book
    )
    assert rebuild_books(book) == held  # the bad delta was never applied: the book was rebuilt
    reasons = rejected(tmp_path / "k.db")
    trade_reasons = [r for r in reasons if r.startswith("trade print")]
    assert len(trade_reasons) == len(hostile), reasons
    assert all("\x1b" not in r for r in reasons)  # a reason quotes the value escaped


def vars_of(book):
    return {"yes": book.yes, "no": book.no}


def test_kakashi_record_with_a_hostile_trade_exits_0_and_writes_trades_and_book_rows(tmp_path, monkeypatch):
    """Shutdown after a hostile trade print: exit 0, that session's trades and book rows written."""
    with signed_loopback(tmp_path, monkeypatch, TICKERS, interval=0.01) as (ws, cfg):
        ws.send_trade(ts=10**30, trade_id="hostile")
        ws.send_trade(ts=int(time.time()), trade_id="good")
        conf = tmp_path / "k.toml"
        conf.write_text(
            f'[kalshi]\napi_base = "{cfg.kalshi.api_base}"\nws_url = "{cfg.kalshi.ws_url}"\n'
            "backoff_base_s = 0.02\ntimeout_s = 2.0\n[catalog]\nroll_seconds = 0.05\n"
        )
        p = subprocess.Popen(
            [
                *KAKASHI,
                "record",
                "--source",
                "kalshi",
                "--config",
                str(conf),
                "--db",
                str(tmp_path / "k.db"),
                "--catalog",
                str(tmp_path / "c"),
                *(a for t in TICKERS for a in ("--ticker", t)),
                "--interval",
                "0.05",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_for(lambda: not ws._trades_out and (tmp_path / "c" / "book_deltas").exists(), timeout=60)
            assert wait_for(lambda: len(list((tmp_path / "c").glob("snapshots/*/*.parquet"))) >= 3, timeout=60)
        finally:
            p.terminate()
            out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "internal error" not in err and "Traceback" not in err
    trades = read_table(tmp_path / "c", "trades").to_pylist()
    assert [r["trade_id"] for r in trades if r["trade_id"] in ("good", "hostile")] == ["good"]
    assert read_table(tmp_path / "c", "book_deltas").num_rows > 0
    assert any(r.startswith("trade print") and "outside" in r for r in rejected(tmp_path / "k.db"))


def test_a_segment_that_cannot_be_written_keeps_its_rows_and_fetching_goes_on(tmp_path):
    """A catalog whose date folder cannot be made (a file in its place): each tick still saves
    its quotes and says why the segment waits; once the folder can be made, every row the
    writer held is written, none twice."""
    root = tmp_path / "catalog"
    writer = CatalogWriter(root, roll_s=0)
    engine = make_engine(tmp_path / "k.db", catalog=writer)
    blocker = root / "snapshots" / "date=2026-01-05"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    reports = [engine.tick() for _ in range(5)]
    assert all(r.saved > 0 for r in reports)  # every fetch reached the engine and its store
    assert all(any("snapshots (" in e and "rows kept for the next roll" in e for e in r.errors) for r in reports)
    assert writer.pending_rows >= 5 * 8 and writer.rows_written["snapshots"] == 0
    assert writer.rows_written["markets"] > 0  # the other tables were written regardless
    blocker.unlink()
    for _ in range(2):
        assert not engine.tick().errors
    writer.close()
    engine.store.close()
    snaps = read_table(root, "snapshots")
    assert snaps.num_rows == 7 * 8 and len({(r["ticker"], r["recv_ts"]) for r in snaps.to_pylist()}) == 7 * 8


def test_the_writer_refuses_each_bad_row_alone_and_writes_the_rest(tmp_path):
    w = CatalogWriter(tmp_path / "c")
    T = SIM_START_MS
    good = dict(
        ts=T, ticker="KXA-1", yes_price_cc=4200, count_hundredths=300, taker_side="yes", trade_id="t1", source="s"
    )
    for bad in (
        {"ts": 10**30},
        {"ts": Y9999_MS},
        {"ts": T + 2 * 3_600_000, "recv_ts": T},  # two hours ahead of when it arrived
        {"count_hundredths": 10**32},
        {"yes_price_cc": 10_000},
        {"ticker": "KXA-1\x1b[31m"},
        {"taker_side": "\x1b[0m"},
        {"trade_id": "x" * 500},
    ):
        assert w.add_trade(**{**good, **bad}) is not None, bad
    assert w.add_trade(**good) is None and w.add_trade(**good, recv_ts=T) is None
    book = ("snapshot", "yes", 4200, 100, 1, 1)
    for kind, side, price, size, seq, sid in (
        ("snapshot", "yes", 4200, 10**30, 1, 1),
        ("delta", "maybe", 4200, 100, 2, 1),
        ("delta", "yes", 4200, 100, 2**64, 1),
        ("reset", "yes", None, None, None, None),
        ("erase", "yes", 4200, 100, 2, 1),
    ):
        assert w.add_book_event(T, "KXA-1", side, price, size, seq, sid, kind, "s") is not None
    assert w.add_book_event(T, "KXA-1", book[1], book[2], book[3], book[4], book[5], book[0], "s") is None
    assert w.add_book_event(T, "KXA-1", None, None, None, None, None, "reset", "s") is None
    assert w.add_snapshot_row(Y9999_MS, "KXA-1", 4200, 4500, None, 0, [], [], "s") is not None
    assert w.add_snapshot_row(T, "KXA-1", 4200, 4500, None, 0, [(4200, 10**30)], [], "s") is not None
    assert w.add_estimate(Estimate(ticker="KXA-1", p_hat=Decimal("0.5"), source="s", ts=Y9999_MS)) is not None
    assert w.refused == 8 + 5 + 3 and len(w.refusals) == 16
    w.close()  # the good rows are written; nothing refused poisoned the segment
    assert read_table(tmp_path / "c", "trades").num_rows == 2
    assert read_table(tmp_path / "c", "book_deltas").num_rows == 2
    assert [p.parent.name for p in (tmp_path / "c").glob("*/*/*.parquet")] == ["date=2026-01-05"] * 2


def test_a_refused_recorded_trade_reaches_the_engine_as_a_rejected_row(tmp_path):
    from kakashi_tui.adapters.kalshi.ws import Trade

    engine = make_engine(tmp_path / "k.db", catalog=CatalogWriter(tmp_path / "c"))
    rec = engine.source.recorder
    rec.trades([Trade("KXA-1", 4200, 10**32, "yes", SIM_START_MS), Trade("KXA-1", 4200, 300, "no", SIM_START_MS)])
    engine.tick()
    rec.close()
    engine.store.close()
    assert any(r.startswith("catalog refused trade print: count") for r in rejected(tmp_path / "k.db"))
    tickers = read_table(tmp_path / "c", "trades").column("ticker").to_pylist()
    assert tickers.count("KXA-1") == 1  # (beside the simulator's own prints of that tick)


# -- 3. time cannot be poisoned ------------------------------------------------------------------
def poison(root, recv_ts):
    """A copy of one snapshot row in the middle of the recording, its fetch time ``recv_ts``
    (as another tool, or a bad clock, would write it)."""
    files = cat.files(root, "snapshots")
    f = files[len(files) // 2]
    t = pq.read_table(f)
    k = t.num_rows // 2
    row = t.slice(k, 1).set_column(t.schema.get_field_index("recv_ts"), "recv_ts", pa.array([recv_ts], pa.int64()))
    pq.write_table(pa.concat_tables([t.slice(0, k + 1), row, t.slice(k + 1)]), f)


@pytest.fixture(scope="module")
def recorded_300(tmp_path_factory):
    """A 300-tick simulator recording and its clean replay's tables, made once for the module
    (each test poisons its own copy of the recording)."""
    folder = tmp_path_factory.mktemp("recorded")
    root, _cash = record_sim(folder, ticks=300)
    run(folder / "clean.db", root)
    clean = tables(folder / "clean.db")
    assert len(clean["decisions"]) > 50
    return root, clean


@pytest.mark.parametrize(
    "when, reason",
    [(Y2099_MS, "snapshot dated ahead of the catalog's clock"), (Y9999_MS, "is outside 2000-01-01..2100-01-01")],
)
def test_one_row_dated_far_ahead_does_not_become_the_replays_clock(tmp_path, recorded_300, when, reason):
    root = shutil.copytree(recorded_300[0], tmp_path / "catalog")
    clean = recorded_300[1]
    poison(root, when)
    for columnar in (True, False):
        db = tmp_path / f"poisoned-{columnar}.db"
        _cash, _eq, stats = run(db, root, columnar=columnar)
        assert tables(db) == clean  # every decision of the clean run, none lost to a late clock
        assert stats.ticks == 300
        why = [r for r in rejected(db) if reason in r]
        assert len(why) == 1 and rejected(db)[why[0]] == 1, rejected(db)


def test_a_replay_clock_jump_that_later_rows_confirm_is_played(tmp_path):
    """A recording that stopped and started again hours later: the rows after the gap are
    played (held, then confirmed by the rows after them), none rejected."""
    T = SIM_START_MS
    w = CatalogWriter(tmp_path / "c", roll_s=float("inf"))
    for k in range(10):
        ts = T + k * 1000 + (5 * 3_600_000 if k >= 4 else 0)
        w.add_snapshot_row(ts, "KXA-1", 4200, 4500, None, 0, [(4200, 100)], [(5500, 100)], "s")
    w.close()
    tl = Timeline(tmp_path / "c")
    played = [ts for chunk in tl.chunks() for ts in chunk.column("ts").to_pylist()]
    assert played == [T + k * 1000 + (5 * 3_600_000 if k >= 4 else 0) for k in range(10)] and not tl.pending_rejects


# -- 6. catalog info reports the segments a replay refuses --------------------------------------
def bad_segment(root, kind):
    w = CatalogWriter(root)
    for i in range(3):
        w.add_snapshot_row(SIM_START_MS + i * 1000, "KXA-1", 4200, 4500, None, 0, [], [], "s")
    w.close()
    folder = root / "snapshots" / "date=2026-01-05"
    good = pq.read_table(next(folder.glob("*.parquet")))
    n = good.num_rows
    t = {
        "string-ts": lambda: good.set_column(0, "ts", pa.array([str(x) for x in good.column("ts").to_pylist()])),
        "missing-ts": lambda: good.drop(["ts"]),
        "null-ts": lambda: good.set_column(0, "ts", pa.array([None] * n, pa.int64())),
        "empty": lambda: good.slice(0, 0),
    }[kind]()
    name = f"part-{SIM_START_MS + 5000:013d}-1-000009.parquet"
    pq.write_table(t, folder / name)
    return name


@pytest.mark.parametrize(
    "kind, code, said",
    [
        ("string-ts", 1, "is unreadable: its ts is string, not integer epoch ms"),
        ("missing-ts", 1, "is unreadable: it has no ts column"),
        ("null-ts", 0, "3 rows without a ts (a replay rejects them)"),
        ("empty", 0, "an empty segment (no rows)"),
    ],
)
def test_catalog_info_reports_each_bad_segment_by_name_as_the_replay_does(capfd, tmp_path, kind, code, said):
    name = bad_segment(tmp_path / "c", kind)
    p = in_process(capfd, "catalog", "info", "--catalog", str(tmp_path / "c"))
    assert p.returncode == code, p.stderr
    assert "internal error" not in p.stderr and "Traceback" not in p.stderr
    assert "2026-01-05" in p.stdout and "1 day(s)" in p.stdout  # the readable rows are still counted
    line = next(ln for ln in (p.stderr if code else p.stdout).splitlines() if name in ln)
    assert said in line and (line.startswith("kakashi: catalog file ") if code else "note:" in line)
    rep = in_process(capfd, "replay", "--catalog", str(tmp_path / "c"), "--db", str(tmp_path / "r.db"))
    assert (rep.returncode != 0) == bool(code) and "Traceback" not in rep.stderr
    if code:  # the replay refuses the same file, by name
        assert name in rep.stderr and "is unreadable" in rep.stderr


# -- 7. small data rules ---------------------------------------------------------------------------
def test_beliefs_keep_their_exact_value_through_the_catalog(tmp_path):
    w = CatalogWriter(tmp_path / "c")
    exact = [Decimal("0.9999999999999999999999"), Decimal("1E-30"), Decimal("0.4200"), Decimal("0.5")]
    for k, p in enumerate(exact):
        w.add_estimate(Estimate(ticker=f"KX{k}", p_hat=p, source="beliefs-file", ts=SIM_START_MS + k))
    w.close()
    got = [e["p_hat"] for e in cat.read_estimates(tmp_path / "c")]
    assert got == exact and [str(p) for p in got] == [str(p) for p in exact]
    tl = Timeline(tmp_path / "c")  # what the catalog replay's estimator hands the engine
    handed = [e.p_hat for parts in tl.ticks(_no_rows(), final=True) for e in parts.estimates]
    assert handed == exact and handed[0] < 1 and handed[1] > 0


def _no_rows():
    import numpy as np

    return np.zeros(0, np.int64)


def test_older_catalogs_beliefs_read_back_as_written_and_bad_ones_are_rejected_with_a_reason(tmp_path):
    """Files written before ``p_hat_exact``: decimal128 (18 places) and, from another writer, a
    float; a belief outside [0, 1] is rejected with its reason, not skipped in silence."""
    root = tmp_path / "c"
    folder = root / "estimates" / "date=2026-01-05"
    folder.mkdir(parents=True)
    old = pa.schema([f for f in cat.ESTIMATES if f.name != "p_hat_exact"])
    rows = {"ts": [SIM_START_MS, SIM_START_MS + 1], "ticker": ["KXA", "KXB"], "source": ["x", "x"]}
    pq.write_table(
        pa.table({**rows, "p_hat": pa.array([Decimal("0.42"), Decimal("1.5")], cat.P_HAT)}).select(old.names),
        folder / f"part-{SIM_START_MS:013d}-1-000001.parquet",
    )
    pq.write_table(
        pa.table({**rows, "p_hat": pa.array([0.1, 0.7], pa.float64())}).select(old.names),
        folder / f"part-{SIM_START_MS + 5:013d}-1-000002.parquet",
    )
    assert [e["p_hat"] for e in cat.read_estimates(root)] == [Decimal(x) for x in ("0.42", "1.5", "0.1", "0.7")]
    tl = Timeline(root)
    ticks = list(tl.ticks(_no_rows(), final=True))
    handed = [(e.ticker, e.p_hat) for parts in ticks for e in parts.estimates]
    assert handed == [("KXA", Decimal("0.42")), ("KXA", Decimal("0.1")), ("KXB", Decimal("0.7"))]
    reasons = [r for parts in ticks for r, _ in parts.rejected]
    assert len(reasons) == 1 and reasons[0].startswith("estimate p_hat") and "1.5" in reasons[0]


def test_catalog_import_run_twice_writes_each_row_once(capfd, tmp_path):
    e = make_engine(tmp_path / "old.db")
    for _ in range(20):
        e.tick()
    e.store.close()
    f = tmp_path / "in.jsonl"
    T = SIM_START_MS + 86_400_000
    f.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"type": "market", "ticker": "B", "series": "S"},
                {"type": "snapshot", "ticker": "B", "ts": T, "yes_bid": "0.40", "yes_ask": "0.45"},
                {"type": "estimate", "ticker": "B", "ts": T, "p_hat": "0.9999999999999999999999", "source": "b"},
                {"type": "snapshot", "ticker": "B", "ts": T + 1000, "yes_bid": "0.41", "yes_ask": "0.45"},
            ]
        )
    )
    counts = []
    outs = []
    for _ in range(2):
        for args in (["--from-db", str(tmp_path / "old.db")], ["--input", str(f)]):
            p = in_process(capfd, "catalog", "import", *args, "--catalog", str(tmp_path / "c"))
            assert p.returncode == 0, p.stderr
            outs.append(p.stdout)
        counts.append({t: read_table(tmp_path / "c", t).num_rows for t in ("snapshots", "markets", "estimates")})
    assert counts[0] == counts[1] and counts[0]["snapshots"] > 2
    assert "0 snapshots, 0 market changes, 0 estimates" in outs[2] and "already in the catalog" in outs[3]


def test_a_market_listed_three_times_in_one_page_is_a_rejected_row_not_the_last_copy(tmp_path):
    from kakashi_tui.adapters.kalshi.client import KalshiClient
    from kakashi_tui.adapters.kalshi.source import KalshiSource
    from kakashi_tui.adapters.store.writer import Store
    from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
    from kakashi_tui.trading.engine import Engine, EngineConfig

    with FakeKalshiServer(FakeKalshi.with_markets(4, page_size=100)) as srv:  # (one page)
        srv.state.bad_rows = {"thrice-ticker", "twice-identical"}
        src = KalshiSource(KalshiClient(base_url=srv.base_url, backoff_base=0.01, timeout=2.0, reads_per_s=500))
        store = Store(tmp_path / "k.db")
        engine = Engine(store, src, [], EngineConfig())
        engine.tick()
        assert "KXBAD-THRICE" not in engine.quotes and "KXBAD-TWICE" in engine.quotes
        store.close()
        src.close()
    reasons = rejected(tmp_path / "k.db")
    assert reasons == {
        "market listed 3 times in one page: the copies differ, none kept": 1,
        "market listed 2 times in one page: identical copies, one kept": 1,
    }


def test_a_recorder_never_raises_into_the_feed_that_hands_it_rows(tmp_path):
    """A refused row is counted and handed on; a trade the feed could not check is refused
    by the writer's own check (the catalog's last guard)."""
    rec = Recorder(CatalogWriter(tmp_path / "c"))

    class T:  # a trade whatever its shape
        ts, ticker, yes_price_cc, count_hundredths, taker_side, trade_id = "soon", None, 4200.5, -1, 7, 9

    rec.trades([T()])
    rec.book_events([cat_event(seq=-1)])
    assert rec.rejected == 2 and len(rec.take_refusals()) == 2
    rec.close()


def cat_event(**kw):
    from kakashi_tui.adapters.kalshi.ws import BookEvent

    fields = dict(
        ts=SIM_START_MS, ticker="KXA-1", side="yes", price_cc=4200, delta_hundredths=100, seq=1, sid=1, kind="delta"
    )
    return BookEvent(**{**fields, **kw})


HOUR = 3_600_000


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.sampled_from([0, 0, 1000, 1000, 2000, -1000, -2 * HOUR, 2 * HOUR, 5 * HOUR, 70 * 8760 * HOUR]),
        min_size=1,
        max_size=30,
    ),
    batch=st.integers(1, 7),
)
def test_the_catalog_replay_keeps_its_clock_by_the_jsonl_replays_rule(tmp_path_factory, steps, batch):
    """The same times, as JSONL records and as catalog rows (in segments and batches of any
    size): the same rows played in the same order, the same rejected for the same reasons."""
    from kakashi_tui.adapters.replay import group_ticks

    times, t = [], SIM_START_MS
    for s in steps:
        t += s
        times.append(t)
    played_jsonl, why_jsonl = [], []
    recs = [(i + 1, {"type": "snapshot", "ticker": "KXA", "ts": ts}, None) for i, ts in enumerate(times)]
    for tick in group_ticks(recs):
        played_jsonl += [r.payload["ts"] for r in tick.rows]
        why_jsonl += [r.split(": ", 1)[1].split(" (")[0].replace("snapshot record ", "") for r, _ in tick.rejected]
    root = tmp_path_factory.mktemp("c")
    folder = root / "snapshots" / "date=2026-01-05"
    folder.mkdir(parents=True)
    for k in range(0, len(times), 4):  # segments of four rows, read in batches of ``batch``
        part = times[k : k + 4]
        n = len(part)
        table = pa.table(
            {
                "ts": pa.array(part, pa.int64()),
                "ticker": ["KXA"] * n,
                **{c: pa.array([None] * n, pa.int64()) for c in ("yes_bid_cc", "yes_ask_cc", "last_cc")},
                "volume_hundredths": pa.array([0] * n, pa.int64()),
                "yes_bids": pa.array([[]] * n, pa.list_(cat.LEVEL)),
                "no_bids": pa.array([[]] * n, pa.list_(cat.LEVEL)),
                "source": ["x"] * n,
                "recv_ts": pa.array(part, pa.int64()),
            },
            metadata={cat.VERSION_KEY: str(cat.CATALOG_VERSION)},
        )
        pq.write_table(table, folder / f"part-{k:013d}.parquet")
    tl = Timeline(root, batch_rows=batch)
    played = [ts for chunk in tl.chunks() for ts in chunk.column("ts").to_pylist()]
    why = [
        r.split(" (")[0].replace("snapshot record ", "").replace("snapshot ", "").replace("catalog's", "file's")
        for r, _ in tl.pending_rejects
    ]
    assert played == played_jsonl
    assert sorted(why) == sorted(why_jsonl)
