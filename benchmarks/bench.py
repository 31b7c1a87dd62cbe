"""Kakashi's performance figures. Run with `make bench` (or `python -m benchmarks.bench`).

Prints one line per figure: `name value unit` and, where there is a baseline measured in
the same run, `ratio=<value/baseline>`. Benchmarks are not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]


def line(name: str, value: float, unit: str, extra: str = "") -> None:
    print(f"{name} {value:.4g} {unit}{(' ' + extra) if extra else ''}", flush=True)


# -- ingest ---------------------------------------------------------------------------------
def make_raw_rows(n: int, markets: int, seed: int = 1) -> list[dict]:
    """Snapshot rows as sources hand them to the engine (Decimal prices, level dicts)."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        bid = r.randint(5, 90)
        ask = bid + r.randint(1, 4)
        out.append(
            {
                "ticker": f"M{i % markets:04d}",
                "ts": 1_767_571_200_000 + (i // markets) * 1000,
                "yes_bid": Decimal(bid) / 100,
                "yes_ask": Decimal(ask) / 100,
                "last": None,
                "volume": 0,
                "yes_bids": [{"price": Decimal(bid - k) / 100, "qty": r.randint(1, 200)} for k in range(3)],
                "no_bids": [{"price": Decimal(100 - ask - k) / 100, "qty": r.randint(1, 200)} for k in range(3)],
            }
        )
    return out


def _insert_seconds(snaps, d: Path, name: str) -> tuple[float, list[str]]:
    from kakashi_tui.adapters.store.writer import Store

    store = Store(d / name)
    t0 = time.perf_counter()
    with store.atomic():
        store.insert_snapshots(snaps, 0, "bench")
    dt = time.perf_counter() - t0
    # the table and its indexes, as Kakashi made them
    schema = [
        r[0]
        for r in store.db.execute_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'snapshots' AND sql IS NOT NULL ORDER BY type DESC"
        )
    ]
    store.close()
    return dt, schema


def bench_ingest(n: int) -> None:
    from kakashi_tui.core.models import Quote, QuoteRules
    from kakashi_tui.core.validate import quick_snapshot

    raws = make_raw_rows(n, 500)
    checked = [quick_snapshot(r, None) for r in raws]  # what the engine's validation hands the store
    quotes = [q for q in checked if q is not None]
    assert len(quotes) == len(checked)
    # pydantic's path (rows it must judge): validated, then made the one quote type
    models = [Quote.from_rules(QuoteRules.model_validate(r)) for r in raws[: n // 10]]
    sample = raws[:20_000]  # validation per row, as a tick does it (results not kept alive)
    t0 = time.perf_counter()
    for r in sample:
        quick_snapshot(r, None)
    check_us = (time.perf_counter() - t0) / len(sample) * 1e6
    t0 = time.perf_counter()
    for r in sample:
        QuoteRules.model_validate(r)
    pydantic_us = (time.perf_counter() - t0) / len(sample) * 1e6
    kakashi, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        models_s, schema = _insert_seconds(models, d, "m.db")
        rows = [(s.ticker, s.ts, 0, *s.prices_cc, s.volume_hundredths, s.book_text, "bench") for s in quotes]
        for rep in range(3):  # alternating, each into a fresh file; the medians are compared
            kakashi.append(_insert_seconds(quotes, d, f"k{rep}.db")[0])
            # the baseline: the same rows, already as tuples, into the same kind of file (WAL, same
            # table and indexes)
            con = sqlite3.connect(d / f"raw{rep}.db")
            con.execute("PRAGMA journal_mode=wal")
            con.execute("PRAGMA synchronous=normal")
            for sql in schema:
                con.execute(sql)
            t0 = time.perf_counter()
            with con:
                con.executemany(
                    "INSERT INTO snapshots (ticker, ts, fetched_ts, yes_bid_cc, yes_ask_cc, last_cc,"
                    " volume_hundredths, book, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            raw.append(time.perf_counter() - t0)
            con.close()
    kakashi_s, raw_s = statistics.median(kakashi), statistics.median(raw)
    line("ingest", n / kakashi_s, "snapshots/s", f"raw_sqlite3={n / raw_s:.4g}/s ratio={raw_s / kakashi_s:.2f}")
    line(
        "ingest_pydantic_models",
        len(models) / models_s,
        "snapshots/s",
        f"ratio={raw_s / n * len(models) / models_s:.2f} (rows the quick check declines, validated by pydantic)",
    )
    line(
        "validate_quick",
        check_us,
        "us/snapshot",
        f"pydantic={pydantic_us:.3g} us/snapshot (the quick check also makes the stored forms)",
    )


# -- replay ---------------------------------------------------------------------------------
def write_replay_file(path: Path, n: int, markets: int, seed: int = 2) -> None:
    r = random.Random(seed)
    t0 = 1_767_571_200_000
    mids = [r.randint(10, 90) for _ in range(markets)]
    with open(path, "w") as f:
        f.write(json.dumps({"type": "start", "ts": t0}) + "\n")
        for m in range(markets):
            f.write(
                json.dumps({"type": "market", "ticker": f"M{m:04d}", "series": "B", "close_ts": t0 + 10**10}) + "\n"
            )
        ticks = n // markets
        for k in range(ticks):
            ts = t0 + (k + 1) * 1000
            for m in range(markets):
                mids[m] = min(max(mids[m] + r.choice((-1, 0, 0, 1)), 5), 93)
                bid, ask = mids[m], mids[m] + r.randint(1, 3)
                f.write(
                    json.dumps(
                        {
                            "type": "snapshot",
                            "ticker": f"M{m:04d}",
                            "ts": ts,
                            "yes_bid": f"{bid / 100:.2f}",
                            "yes_ask": f"{ask / 100:.2f}",
                            "book": {
                                "yes": [[f"{(bid - i) / 100:.2f}", 50] for i in range(3)],
                                "no": [[f"{(100 - ask - i) / 100:.2f}", 50] for i in range(3)],
                            },
                        }
                    )
                    + "\n"
                )
            if k % 50 == 0:  # beliefs change now and then, on a tenth of the markets
                for m in range(0, markets, 10):
                    f.write(
                        json.dumps(
                            {
                                "type": "estimate",
                                "ticker": f"M{m:04d}",
                                "ts": ts,
                                "p_hat": f"{r.randint(5, 95) / 100:.2f}",
                                "source": "bench",
                            }
                        )
                        + "\n"
                    )


#: The takers' prints in the replay catalog: the chance per market per tick of one (a stream of
#: their own, so the snapshots and beliefs are ``write_replay_file``'s draws all the same).
PRINT_RATE = 0.2


def write_replay_catalog(root: Path, n: int, markets: int, seed: int = 2) -> None:
    """The data of ``write_replay_file`` (same draws, same order) written straight into a catalog,
    with takers' prints besides (``PRINT_RATE``, from a random stream of their own): between two
    ticks a taker hits the YES bid or lifts the YES ask as the last quote stands, up to the size
    shown, received at the next tick. Without prints a resting order never fills (the replay's
    post figure would time orders that only rest); the take figure reads the same catalog."""
    from kakashi_tui.adapters.catalog import CatalogWriter
    from kakashi_tui.core.models import Estimate, Market, MarketStatus

    r = random.Random(seed)
    rp = random.Random(f"{seed}:prints")
    t0 = 1_767_571_200_000
    mids = [r.randint(10, 90) for _ in range(markets)]
    quoted: list[tuple[int, int] | None] = [None] * markets  # each market's last (bid, ask), in cents
    w = CatalogWriter(root, roll_s=float("inf"), max_rows=250_000)
    for m in range(markets):
        w.add_market(Market(ticker=f"M{m:04d}", series="B", status=MarketStatus.ACTIVE, close_ts=t0 + 10**10), t0)
    serial = 0
    for k in range(n // markets):
        ts = t0 + (k + 1) * 1000
        for m in range(markets):  # the prints since the last tick, against the last quote
            q = quoted[m]
            if q is None or rp.random() >= PRINT_RATE:
                continue
            serial += 1
            buys_yes = rp.random() < 0.5
            w.add_trade(
                ts - 1 - rp.randrange(998),
                f"M{m:04d}",
                (q[1] if buys_yes else q[0]) * 100,
                rp.randint(1, 50) * 100,
                "yes" if buys_yes else "no",
                f"b-{serial}",
                "bench",
                recv_ts=ts,
                taker_book_side="bid" if buys_yes else "ask",
                is_block_trade=False,
            )
        for m in range(markets):
            mids[m] = min(max(mids[m] + r.choice((-1, 0, 0, 1)), 5), 93)
            bid, ask = mids[m], mids[m] + r.randint(1, 3)
            quoted[m] = (bid, ask)
            w.add_snapshot_row(
                ts,
                f"M{m:04d}",
                bid * 100,
                ask * 100,
                None,
                0,
                [((bid - i) * 100, 5000) for i in range(3)],
                [((100 - ask - i) * 100, 5000) for i in range(3)],
                "bench",
            )
        if k % 50 == 0:
            for m in range(0, markets, 10):
                w.add_estimate(
                    Estimate(ticker=f"M{m:04d}", ts=ts, p_hat=Decimal(r.randint(5, 95)) / 100, source="bench")
                )
        w.maybe_roll()
    w.close()


def replay_catalog_once(root: str, db: str, mode: str = "take") -> None:
    """The columnar replay alone (a child process of bench_replay), in ``[strategy] mode``
    ``mode``, with the defaults otherwise, as ``kakashi replay --catalog`` makes its source:
    one JSON line."""
    from kakashi_tui.adapters.columnar import CatalogSource
    from kakashi_tui.trading.config import KakashiConfig
    from kakashi_tui.trading.runtime import REPLAY_COMMIT_EVERY, replay_service

    cfg = KakashiConfig.model_validate({"strategy": {"mode": mode}})  # (checked as a config file's)
    ec = cfg.engine_config()
    source = CatalogSource(
        root,
        edge_threshold=ec.strategy.edge_threshold,
        fee_multipliers=[ec.taker_fee_multiplier, *ec.series_fee_multipliers.values()],
        mode=mode,
    )
    service, close = replay_service(db, source, source, cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    service.run_here(source.has_next, commit_every=REPLAY_COMMIT_EVERY)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    close()
    con = sqlite3.connect(db)
    decisions = con.execute("SELECT count(*) FROM decisions").fetchone()[0]
    orders = dict(con.execute("SELECT mode, count(*) FROM orders GROUP BY mode").fetchall())
    fills = dict(con.execute("SELECT role || ':' || trigger, count(*) FROM fills GROUP BY 1").fetchall())
    con.close()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "decisions": decisions,
                "orders": orders,
                "fills": fills,
                "stats": vars(source.stats),
            }
        )
    )


#: The columnar replay is timed this many times and its fastest run reported (all are printed).
REPLAY_RUNS = 3


def columnar_runs(root: Path, d: Path, mode: str) -> list[dict]:
    """``REPLAY_RUNS`` columnar replays of ``root`` in ``mode``, each in a process of its own
    and into a new database (``replay_catalog_once``'s lines); the same work each time."""
    runs = []
    for k in range(REPLAY_RUNS):
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench", "--replay-catalog", str(root), str(d / f"{mode}{k}.db"), mode],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    work = {(r["decisions"], json.dumps([r["stats"], r["orders"], r["fills"]], sort_keys=True)) for r in runs}
    assert len(work) == 1, runs  # same work each time
    return runs


def bench_replay(n: int, markets: int) -> None:
    from kakashi_tui.adapters.columnar import Timeline, check_batch
    from kakashi_tui.adapters.replay import ReplayEstimator, ReplaySource, group_ticks, read_jsonl
    from kakashi_tui.core.validate import quick_snapshot
    from kakashi_tui.trading.config import KakashiConfig
    from kakashi_tui.trading.runtime import REPLAY_COMMIT_EVERY, replay_service

    with tempfile.TemporaryDirectory() as d:
        # the per-row path, as before: JSONL through the full engine tick, every row
        f = Path(d) / "replay.jsonl"
        write_replay_file(f, n, markets)
        source = ReplaySource(group_ticks(read_jsonl(f)))
        service, close = replay_service(str(Path(d) / "r.db"), source, ReplayEstimator(source), KakashiConfig())
        store = service._engine.store  # the benchmark counts decisions itself
        saved = 0

        def count(report) -> None:
            nonlocal saved
            saved += report.saved

        service.on_report(count)
        t0, c0 = time.perf_counter(), time.process_time()
        service.run_here(source.has_next, commit_every=REPLAY_COMMIT_EVERY)  # as `kakashi replay` does
        dt, row_cpu = time.perf_counter() - t0, time.process_time() - c0
        decisions = store.db.execute_sql("SELECT count(*) FROM decisions").fetchone()[0]
        store.close()
        # the same data as a catalog, replayed columnar in a process of its own, as `kakashi
        # replay --catalog` runs (not in this one's heap, after a million rows replayed per row)
        root = Path(d) / "catalog"
        write_replay_catalog(root, n, markets)
        # Best of REPLAY_RUNS, each into a new database (timeit's rule: the fastest run is what the
        # code costs; slower ones measure what else the machine was doing). Every run is printed.
        # Take mode (the default), then post mode (resting orders) on the same catalog: each run
        # in a process of its own, so neither's heap slows the other's.
        runs = columnar_runs(root, Path(d), "take")
        post_runs = columnar_runs(root, Path(d), "post")
        got = min(runs, key=lambda r: r["seconds"])
        col_s, col_cpu, col_decisions = got["seconds"], got["cpu"], got["decisions"]
        st = SimpleNamespace(**got["stats"])
        # cpu=: the same per CPU second of this process (a busy machine slows the wall clock, not this)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        every = ",".join(f"{st.snapshots / r['seconds']:.4g}" for r in runs)
        line(
            "replay",
            st.snapshots / col_s,
            "snapshots/s",
            f"cpu={st.snapshots / col_cpu:.4g}/s load={load} snapshots={st.snapshots} markets={markets} "
            f"seconds={col_s:.1f} "
            f"best_of={REPLAY_RUNS} runs={every} "
            f"decisions={col_decisions} rows_through_tick={st.rows_decided} (catalog, columnar) "
            f"per_row={saved / dt:.4g}/s cpu={saved / row_cpu:.4g}/s (JSONL through the row tick: "
            f"seconds={dt:.1f} decisions={decisions})",
        )
        # resting orders on: the same catalog in post mode; ratio= its rate over take mode's
        best = min(post_runs, key=lambda r: r["seconds"])
        pst = SimpleNamespace(**best["stats"])
        rate, take_rate = pst.snapshots / best["seconds"], st.snapshots / col_s
        fills = " ".join(f"{k}={v}" for k, v in sorted(best["fills"].items())) or "none"
        post_every = ",".join(f"{pst.snapshots / r['seconds']:.4g}" for r in post_runs)
        line(
            "replay_post",
            rate,
            "snapshots/s",
            f"ratio={rate / take_rate:.3g} (post/take, target>=0.5) cpu={pst.snapshots / best['cpu']:.4g}/s "
            f"load={' '.join(f'{x:.1f}' for x in os.getloadavg())} seconds={best['seconds']:.1f} "
            f"best_of={REPLAY_RUNS} runs={post_every} "
            f"decisions={best['decisions']} orders={sum(best['orders'].values())} fills: {fills} "
            f"rows_through_tick={pst.rows_decided} (the take figure's catalog, [strategy] mode = post)",
        )
        # scan and validate: read every batch of the catalog and check it vectorised
        t0, c0 = time.perf_counter(), time.process_time()
        rows = 0
        for chunk in Timeline(root).chunks():
            rows += check_batch(chunk, None).n
        scan_s, scan_cpu = time.perf_counter() - t0, time.process_time() - c0
        # Where the per-row path's time goes: the same file read and grouped alone, then also checked.
        t0 = time.perf_counter()
        for _tick in group_ticks(read_jsonl(f)):
            pass
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for tick in group_ticks(read_jsonl(f)):
            if not isinstance(tick, int):
                for row in tick.rows:
                    if row.snapshot is not None:
                        quick_snapshot(row.snapshot, tick.ts)
        check_s = time.perf_counter() - t0 - read_s
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    line(
        "replay_scan_validate",
        rows / scan_s,
        "rows/s",
        f"cpu={rows / scan_cpu:.4g}/s load={load} rows={rows} (Parquet batches "
        f"read and checked vectorised; cpu counts both decoding threads)"
        f" per_row={saved / (read_s + check_s):.4g}/s (JSONL read, grouped and quick-checked row by row)",
    )
    per = 1e6 / saved
    line(
        "replay_per_row_stages",
        dt * per,
        "us/snapshot",
        f"read+group={read_s * per:.2f} check={check_s * per:.2f} "
        f"engine_rest={(dt - read_s - check_s) * per:.2f} (persist, estimate, decide, risk, fill, ledger, commit)",
    )


# -- desk refresh ---------------------------------------------------------------------------
def bench_desk(markets: int) -> dict:
    from dataclasses import replace

    from kakashi_tui.frontends.desk.app import KakashiApp
    from kakashi_tui.frontends.desk.widgets.markets_table import MarketsTable
    from kakashi_tui.trading.view import DeskView, MarketLine

    r = random.Random(3)
    lines = [
        MarketLine(
            ticker=f"M{i:05d}",
            title="bench",
            bid=Decimal("0.40"),
            ask=Decimal("0.43"),
            last=None,
            p_hat=Decimal("0.5"),
            p_source="bench",
            ev_yes=Decimal("0.05"),
            ev_no=Decimal("-0.02"),
            signal="",
            age_ms=0,
            close_ts=None,
        )
        for i in range(markets)
    ]

    def view(ls):
        return DeskView(
            source="bench",
            state="RUNNING",
            state_kind="running",
            tick=1,
            clock_ms=0,
            latency_ms=0,
            feed_errors=(),
            rejected_total=0,
            markets=tuple(ls),
            books={},
            decisions=(),
            positions=(),
            history=(),
            cash_cc=0,
            equity_cc=0,
            realized_cc=0,
            unrealized_cc=0,
            today_pnl_cc=0,
            fees_cc=0,
            equity_series=(),
            risk=(),
            killed=False,
            paused=False,
            daily_stopped=False,
        )

    class Probe(KakashiApp):
        def on_mount(self) -> None:  # no engine loop: only the markets panel is measured
            self.theme = "textual-dark"

    def same(v):  # (SameLines is absent from the code before issue #19: the bench measures that code too)
        return v

    try:
        from kakashi_tui.frontends.desk.widgets.markets_table import SameLines

        same = SameLines()  # type: ignore[assignment]
    except ImportError:
        pass

    times: list[float] = []
    paced: list[float] = []
    prepared: list[float] = []
    cpu: list[float] = []  # the same refresh in CPU time: a loaded machine disturbs it less

    async def run():
        from kakashi_tui.trading.service import TradingService
        from tests.conftest import make_engine  # a service is required by the app; never ticked

        with tempfile.TemporaryDirectory() as d:
            e = make_engine(Path(d) / "k.db")
            app = Probe(TradingService(e), autostart=False, animations=False)
            async with app.run_test(size=(120, 40)) as pilot:
                table = app.query_one(MarketsTable)
                table.apply(view(lines))
                await pilot.pause()
                cur = list(lines)
                region = table.region
                for _ in range(12):
                    for i in r.sample(range(markets), markets // 10):
                        cur[i] = replace(cur[i], bid=Decimal(r.randint(30, 45)) / 100, age_ms=r.randint(0, 9000))
                    # the service builds every line anew for each view (equal or not): so here
                    fresh = [replace(m) for m in cur]
                    # what the desk does with a view where it is published, on the engine's thread
                    t0 = time.perf_counter()
                    v = same(view(fresh))
                    prepared.append((time.perf_counter() - t0) * 1000)
                    # one refresh = the diff (apply) + rendering what is on screen (what the
                    # compositor asks the widget for); Textual's own frame pacing is not counted
                    t0, c0 = time.perf_counter(), time.thread_time()
                    table.apply(v)
                    table.render_lines(region.reset_offset)
                    times.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.thread_time() - c0) * 1000)
                    t1 = time.perf_counter()
                    await pilot.pause()
                    paced.append((time.perf_counter() - t1) * 1000)
            e.store.close()

    asyncio.run(run())
    ms = statistics.median(times[2:])
    line(
        f"desk_refresh_{markets}",
        ms,
        "ms",
        f"cpu={statistics.median(cpu[2:]):.1f}ms 10% of quotes changed, every line a new object as the "
        f"service builds them, median of 10 "
        f"(apply + render of the visible rows, on the desk's loop; before it, off the loop, the unchanged "
        f"lines matched on the engine's thread {statistics.median(prepared[2:]):.1f} ms; after it, Textual's "
        f"frame cycle {statistics.median(paced[2:]):.1f} ms) load={os.getloadavg()[0]:.1f}",
    )
    return {"refresh_ms": ms, "refresh_cpu_ms": statistics.median(cpu[2:])}


# -- kill latency ---------------------------------------------------------------------------
def bench_kill(markets: int, presses: int) -> dict:
    """`k` as the terminal delivers it (the driver posts a Key event to the app's loop) to the
    engine's kill flag, with the loop ticking `markets` markets flat out.

    The key is sent the way Textual's driver sends it, not with `Pilot.press`: a press waits
    for the process to go CPU-idle (up to 1 s, twice), which never happens while the engine
    ticks flat out, so 200 presses took ~9 minutes and every key landed on a freshly drained
    UI loop. Each press then waits for its re-arm to be applied (it follows the kill on the
    queue), so every press starts from an armed, stored state.

    Where the time goes: full (generation 2) garbage collections stop every thread; the line
    says how many presses overlapped one and the longest one seen. It also says how long the
    desk's event loop went without a turn (``loop_stall``: a task that wakes every 5 ms
    records each late wake-up beyond 5 ms), a figure a busy machine disturbs less than the
    latency itself: a stall is work on the loop (or the GIL held) that a key waits behind."""
    from textual import events

    from kakashi_tui.frontends.desk.app import KakashiApp
    from kakashi_tui.trading.commands import Rearm
    from kakashi_tui.trading.config import KakashiConfig, SimSection
    from kakashi_tui.trading.runtime import Options, build_engine
    from kakashi_tui.trading.service import TradingService

    lat: list[float] = []
    spans: list[tuple[float, float]] = []
    full_gcs: list[tuple[float, float]] = []
    gc_start = [0.0]
    stalls: list[float] = []  # ms the desk's event loop was late beyond its 5 ms heartbeat
    beat_s = [0.0, 0.0]  # when the heartbeat started and stopped (perf_counter)

    async def heartbeat() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            stalls.append((time.perf_counter() - t - 0.005) * 1000)

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        elif info["generation"] == 2:
            full_gcs.append((gc_start[0], time.perf_counter()))

    async def run():
        with tempfile.TemporaryDirectory() as d:
            cfg = KakashiConfig(sim=SimSection(markets=markets))
            e = build_engine(
                Options(source="sim", db=str(Path(d) / "k.db"), seed=1, sim_start_ms=1_767_571_200_000), cfg
            )
            service = TradingService(e, interval=0)
            app = KakashiApp(service, autostart=True, animations=False)
            async with app.run_test(size=(120, 40)) as pilot:
                while e.tick_count < 3:
                    await pilot.pause(0.01)
                driver = app._driver
                beat = asyncio.create_task(heartbeat())
                killed_at: list[float] = []  # perf_counter() as the flag flipped (the engine keeps none)
                throw = e.throw_kill

                def timed_throw(reason: str = "operator") -> None:
                    throw(reason)
                    killed_at.append(time.perf_counter())

                e.throw_kill = timed_throw
                beat_s[0] = time.perf_counter()
                for _ in range(presses):
                    await asyncio.sleep(random.uniform(0.005, 0.05))
                    killed_at.clear()
                    key = events.Key("k", "k")
                    key.set_sender(app)
                    t0 = time.perf_counter()
                    driver.send_message(key)  # what the terminal driver's input thread does
                    while not killed_at:
                        await asyncio.sleep(0)
                    # the instant the flag flipped: the gate reads it before every decision
                    lat.append((killed_at[0] - t0) * 1000)
                    spans.append((t0, killed_at[0]))
                    # the kill is stored by the service in order; the re-arm follows it on the queue
                    await asyncio.wrap_future(service.submit(Rearm("bench")))
                beat.cancel()
                beat_s[1] = time.perf_counter()
                service.stop()
            e.store.close()

    random.seed(7)
    gc.callbacks.append(on_gc)
    t_start = time.perf_counter()
    try:
        asyncio.run(run())
    finally:
        gc.callbacks.remove(on_gc)
    wall = time.perf_counter() - t_start
    in_gc = sum(any(a < t1 and b > t0 for a, b in full_gcs) for t0, t1 in spans)
    longest = max(((b - a) * 1000 for a, b in full_gcs), default=0.0)
    lat.sort()
    p99 = lat[math.ceil(0.99 * len(lat)) - 1]  # nearest rank: 99% of presses were at most this
    minutes = (beat_s[1] - beat_s[0]) / 60
    over_100 = sum(s > 100 for s in stalls)
    per_min = over_100 / minutes if minutes > 0 else 0.0
    line(
        f"kill_latency_p99_{markets}",
        p99,
        "ms",
        f"p50={statistics.median(lat):.2f}ms max={lat[-1]:.1f}ms markets={markets} "
        f"presses={presses} full_gcs={len(full_gcs)} (longest {longest:.0f}ms, {in_gc} presses overlapped one) "
        f"loop_stall max={max(stalls, default=0.0):.0f}ms over_50ms={sum(s > 50 for s in stalls)} "
        f"over_100ms={over_100} in {minutes * 60:.0f}s ({per_min:.2f}/min) "
        f"load={os.getloadavg()[0]:.1f} wall={wall:.0f}s",
    )
    return {"kill_p99_ms": p99, "stalls_100_per_min": per_min}


# -- memory ---------------------------------------------------------------------------------
def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def bench_memory(ticks: int) -> None:
    from kakashi_tui.trading.service import TradingService
    from tests.conftest import make_engine

    with tempfile.TemporaryDirectory() as d:
        e = make_engine(Path(d) / "k.db")
        service = TradingService(e, interval=0)
        warm = max(1000, ticks // 10)
        service.max_ticks = warm
        service.run_here()
        gc.collect()
        before = rss_kb()
        t0 = time.perf_counter()
        service.max_ticks = ticks
        service.run_here()
        dt = time.perf_counter() - t0
        gc.collect()
        after = rss_kb()
        e.store.close()
    growth = (after - before) / before * 100
    line(
        "memory_growth",
        growth,
        "%",
        f"rss_before={before}kB rss_after={after}kB ticks={ticks} ticks_per_s={ticks / dt:.0f}",
    )


# -- Kalshi at its real size (issue #22, item 10) ---------------------------------------------
BIGTICK_MOVING = 50  # markets changing a tick, and markets believed


def bigtick_run(listed: int, ticks: int = 8) -> dict:
    """A recorded loopback Kalshi run (REST, no key) listing ``listed`` markets, beliefs on
    BIGTICK_MOVING of them and BIGTICK_MOVING others changing a tick: the steady ticks' CPU on
    the engine's thread (``time.thread_time``: the loopback server's thread is not counted), the
    catalog rows each wrote, and the process's RSS after the run."""
    from datetime import UTC, datetime

    from kakashi_tui.adapters.catalog import RecordingSource
    from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
    from kakashi_tui.trading.config import CatalogSection, KakashiConfig, KalshiSection
    from kakashi_tui.trading.runtime import Options, build_service

    state = FakeKalshi.with_markets(listed, page_size=1000)
    fixed = datetime.now(UTC)
    for mk in state.markets:  # times that stand still, as Kalshi's do
        mk.times_from = fixed
    m, n = state.markets, BIGTICK_MOVING
    cpu: list[float] = []
    rows: list[int] = []
    with tempfile.TemporaryDirectory() as d, FakeKalshiServer(state) as rest:
        beliefs = Path(d) / "beliefs.toml"
        beliefs.write_text("[beliefs]\n" + "".join(f'"{m[i].ticker}" = 0.5\n' for i in range(n)))
        cfg = KakashiConfig(kalshi=KalshiSection(api_base=rest.base_url, timeout_s=60.0), catalog=CatalogSection())
        opts = Options(source="kalshi", db=f"{d}/k.db", beliefs=str(beliefs), record=True, catalog=f"{d}/catalog")
        service, close = build_service(opts, cfg, interval=0.01, log=lambda _s: None)
        source = service._engine.source
        assert isinstance(source, RecordingSource)
        w = source.recorder.writer
        written = lambda: w.pending_rows + sum(w.rows_written.values())  # noqa: E731
        try:
            for i in range(ticks + 2):
                with state.lock:
                    for k in range(n):
                        mk = m[n + (i * n + k) % (listed - n)]  # never a believed one
                        bid, ask = mk.bid or Decimal(0), mk.ask or Decimal(1)
                        mk.touch(bid=bid + (mk.tick if bid + mk.tick < ask else -mk.tick))
                r0, c0 = written(), time.thread_time()
                service.step()
                c1 = time.thread_time()
                if i >= 2:  # the first listing and the first changes listing are not steady
                    cpu.append(c1 - c0)
                    rows.append(written() - r0)
        finally:
            service.stop()
            close()
    gc.collect()
    return {"cpu_ms": statistics.median(cpu) * 1000, "rows": statistics.mean(rows), "rss_kb": rss_kb()}


def bench_bigtick(quick: bool) -> None:
    big = 5_000 if quick else 20_000
    small = bigtick_run(500)
    large = bigtick_run(big)
    ratio = large["cpu_ms"] / small["cpu_ms"]
    size = f"{big:,} listed{' (--quick: 5,000, not 20,000)' if quick else ''}"
    line("bigtick_500", small["cpu_ms"], "ms", f"cpu a steady tick; catalog rows/tick={small['rows']:.0f}")
    line(
        f"bigtick_{big}",
        large["cpu_ms"],
        "ms",
        f"cpu a steady tick at {size}, {BIGTICK_MOVING} changing, {BIGTICK_MOVING} believed; "
        f"catalog rows/tick={large['rows']:.0f}; rss after={large['rss_kb']}kB",
    )
    line("bigtick_ratio", ratio, "x", f"target<=2 {'met' if ratio <= 2 else 'NOT MET'}")


# -- start-up -------------------------------------------------------------------------------
def bench_startup() -> None:
    exe = [sys.executable, "-m", "kakashi_tui"]
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        subprocess.run([*exe, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    line("startup_help", statistics.median(times), "s", "median of 7")
    # An operator throws the kill switch from another terminal: the whole `kakashi kill` process
    # (start, imports, the request written and applied), wall and CPU, on a database a run made.
    with tempfile.TemporaryDirectory() as d:
        db = str(Path(d) / "k.db")
        subprocess.run([*exe, "run", "--headless", "--ticks", "20", "--db", db], capture_output=True, check=True)
        for name, args in (("startup_kill", ["kill", "--db", db]), ("startup_status", ["status", "--db", db])):
            walls, cpus = [], []
            for _ in range(10):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run([*exe, *args], capture_output=True, check=True)
                walls.append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            line(name, statistics.median(walls), "s", f"cpu={statistics.median(cpus):.3f}s median of 10")
    code = """
import sys, time
t0 = float(sys.argv[1])
from kakashi_tui.trading.config import KakashiConfig
from kakashi_tui.trading.runtime import Options, build_service
from kakashi_tui.frontends.desk.app import KakashiApp

class FirstPaint(KakashiApp):
    def on_mount(self):
        super().on_mount()
        self.call_after_refresh(self.exit)

service, close = build_service(Options(db=sys.argv[2]), KakashiConfig(), desk=True)
FirstPaint(service, autostart=False).run(headless=True)
close()
print(time.time() - t0)
"""
    paints = []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.time()
            p = subprocess.run(
                [sys.executable, "-c", code, str(t0), str(Path(d) / "k.db")],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            paints.append(float(p.stdout.strip().splitlines()[-1]))
    line("startup_first_paint", statistics.median(paints), "s", "median of 5, process start to first paint")


#: The desk's figures: measured at both sizes, each size RUNS times in a process of its own;
#: the median is compared with the target (issue #19), every run printed.
DESK_SIZES = (1000, 5000)
DESK_RUNS = 3
#: (figure, key, unit, target, at most?) checked at DESK_SIZES[-1]
DESK_TARGETS = {
    "desk": [("desk_refresh", "refresh_ms", "ms", 10.0)],
    "kill": [
        ("kill_latency_p99", "kill_p99_ms", "ms", 10.0),
        ("loop_stalls_over_100ms", "stalls_100_per_min", "/min", 1.0),
    ],
}


def desk_figure(name: str, quick: bool) -> None:
    """``desk`` or ``kill`` at each of DESK_SIZES, DESK_RUNS runs each, one process per run."""
    for markets in DESK_SIZES:
        runs: list[dict] = []
        for _ in range(DESK_RUNS):
            cmd = [sys.executable, "-m", "benchmarks.bench", "--only", name, "--child", "--markets", str(markets)]
            out = subprocess.run(
                [*cmd, *(["--quick"] if quick else [])], check=True, cwd=ROOT, capture_output=True, text=True
            )
            for ln in out.stdout.splitlines():
                if ln.startswith("{"):
                    runs.append(json.loads(ln))
                else:
                    print(f"  run {len(runs) + 1}: {ln}", flush=True)
        for figure, key, unit, target in DESK_TARGETS[name]:
            values = [r[key] for r in runs]
            med = statistics.median(values)
            verdict = ""
            if markets == DESK_SIZES[-1]:
                verdict = f" target<={target:g}{unit} {'met' if med <= target else 'NOT MET'}"
            every = ",".join(f"{x:.3g}" for x in values)
            line(f"{figure}_{markets}", med, unit, f"median of {len(values)} runs={every}{verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--only", nargs="*", help="ingest replay desk kill memory bigtick startup")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--replay-catalog", nargs="+", help=argparse.SUPPRESS)  # root db [mode]
    ap.add_argument("--markets", type=int, help=argparse.SUPPRESS)  # desk, kill: one size, one run (a child)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if a.replay_catalog:
        replay_catalog_once(*a.replay_catalog)
        return
    figures = ["ingest", "replay", "desk", "kill", "memory", "bigtick", "startup"]
    # the replay figure prints replay, replay_post, replay_scan_validate and replay_per_row_stages: any runs it
    only = {"replay" if n.startswith("replay") else n for n in (a.only or figures)}
    if unknown := only - set(figures):
        ap.error(f"unknown figure(s): {' '.join(sorted(unknown))}")
    if not a.child:
        print(f"# machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, {sys.platform}", flush=True)
    if len(only) > 1:
        # each figure in its own process: one figure's heap (a million replayed rows) must not
        # slow the next one's garbage collections
        quick = ["--quick"] if a.quick else []
        for name in (f for f in figures if f in only):
            subprocess.run(
                [sys.executable, "-m", "benchmarks.bench", "--only", name, "--child", *quick], check=True, cwd=ROOT
            )
        return
    if "ingest" in only:
        bench_ingest(20_000 if a.quick else 200_000)
    if "replay" in only:
        bench_replay(50_000 if a.quick else 1_000_000, 500)
    for name in ("desk", "kill"):
        if name not in only:
            continue
        if a.markets is None:  # every size, DESK_RUNS runs each, in processes of their own
            desk_figure(name, a.quick)
        elif name == "desk":
            print(json.dumps(bench_desk(a.markets)), flush=True)
        else:
            print(json.dumps(bench_kill(a.markets, 40 if a.quick else 200)), flush=True)
    if "memory" in only:
        bench_memory(5_000 if a.quick else 100_000)
    if "bigtick" in only:
        bench_bigtick(a.quick)
    if "startup" in only:
        bench_startup()


if __name__ == "__main__":
    main()
