"""The market-data catalog: what is written, how segments roll, crash safety, the CLI."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter
from kakashi_tui.core.errors import KakashiError
from kakashi_tui.core.models import Estimate, Market
from kakashi_tui.core.validate import quick_snapshot
from tests.clirun import in_process
from tests.conftest import SIM_START_MS, make_engine
from tests.integration.test_replay import tables

KAKASHI = [sys.executable, "-m", "kakashi_tui"]


def hive(root, table):
    return ds.dataset(root / table, format="parquet", partitioning="hive")


def test_a_recorded_sim_run_is_a_hive_partitioned_parquet_dataset_with_exact_values(tmp_path):
    w = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"))
    e = make_engine(tmp_path / "k.db", catalog=w)
    for _ in range(30):
        e.tick()
    w.close()
    e.store.close()
    t = hive(tmp_path / "catalog", "snapshots").to_table()
    assert t.schema.field("yes_bid_cc").type == pa.int64() and t.schema.field("volume_hundredths").type == pa.int64()
    assert t.schema.field("yes_bids").type == pa.list_(cat.LEVEL)
    assert set(t.column("date").to_pylist()) == {"2026-01-05"}  # the UTC date of the simulated clock
    c = sqlite3.connect(tmp_path / "k.db")
    cols = {r[1] for r in c.execute("PRAGMA table_info(snapshots)")}
    if "yes_bid_cc" in cols:  # stored in $0.0001 and hundredths already (schema v4)
        stored = c.execute(
            "SELECT ticker, ts, yes_bid_cc, yes_ask_cc, last_cc, volume_hundredths, book FROM snapshots ORDER BY id"
        ).fetchall()
    else:  # REAL probabilities and whole contracts (schema v3)
        stored = [
            (t, ts, *(None if x is None else round(x * 10_000) for x in (b, a, la)), v * 100, book)
            for t, ts, b, a, la, v, book in c.execute(
                "SELECT ticker, ts, yes_bid, yes_ask, last, volume, book FROM snapshots ORDER BY id"
            )
        ]
    # every fetch is recorded; the database keeps a quote once (a quiet market's re-sent quote,
    # its old ts with the recv_ts of the fetch that re-sent it, adds no row there)
    rows = t.to_pylist()
    fresh = [r for r in rows if r["recv_ts"] == r["ts"]]
    assert t.num_rows == 30 * 8 and len(fresh) == len(stored) < t.num_rows
    last_of: dict[str, dict] = {}
    for r in rows:
        if r["recv_ts"] != r["ts"]:
            assert r["recv_ts"] > r["ts"] and r == {**last_of[r["ticker"]], "recv_ts": r["recv_ts"]}
        last_of[r["ticker"]] = r
    for row, (ticker, ts, bid, ask, last, vol, book) in zip(fresh, stored):
        assert (row["ticker"], row["ts"]) == (ticker, ts)
        assert (row["yes_bid_cc"], row["yes_ask_cc"], row["last_cc"]) == (bid, ask, last)
        assert row["volume_hundredths"] == vol and row["source"] == "sim"
        b = json.loads(book)
        assert [(lv["price_cc"], lv["qty_hundredths"]) for lv in row["yes_bids"]] == [
            (int(Decimal(p) * 10_000), int(Decimal(str(q)) * 100)) for p, q in b["yes"]
        ]
        assert [(lv["price_cc"], lv["qty_hundredths"]) for lv in row["no_bids"]] == [
            (int(Decimal(p) * 10_000), int(Decimal(str(q)) * 100)) for p, q in b["no"]
        ]
    ts = t.column("recv_ts").to_pylist()
    assert ts == sorted(ts)  # recorded order is the order of the fetches
    est = hive(tmp_path / "catalog", "estimates").to_table()
    assert est.num_rows > 0 and est.schema.field("p_hat").type == cat.P_HAT
    mk = hive(tmp_path / "catalog", "markets").to_table().to_pylist()
    assert {m["ticker"] for m in mk} == {r[0] for r in stored} and all(m["status"] in ("open", "active") for m in mk)


def market(t="T", status="open"):  # ("open" reads as "active" where the lifecycle words are Kalshi's)
    return Market(ticker=t, status=status, series="S", close_ts=SIM_START_MS + 10**9)


def quote(t, ts, bid="0.42", ask="0.45"):
    q = quick_snapshot(
        {
            "ticker": t,
            "ts": ts,
            "yes_bid": bid,
            "yes_ask": ask,
            "yes_bids": [[bid, 3]],
            "no_bids": [[str(1 - Decimal(ask)), 2]],
        },
        None,
    )
    assert q is not None
    return q


def test_segments_roll_on_time_and_size_and_split_at_utc_midnight(tmp_path):
    clock = [0.0]
    w = CatalogWriter(tmp_path / "c", roll_s=60, max_rows=5, clock=lambda: clock[0])
    midnight = SIM_START_MS + 86_400_000
    w.add_snapshot(quote("T", midnight - 1000), "x")
    assert w.maybe_roll() == 0  # young and small: kept
    clock[0] = 61
    assert w.maybe_roll() == 1 and w.pending_rows == 0
    for k in range(5):  # size: five rows straddling midnight -> one file per date
        w.add_snapshot(quote("T", midnight - 2 + k), "x")
    assert w.maybe_roll() == 2
    w.close()
    days = sorted(p.name for p in (tmp_path / "c" / "snapshots").iterdir())
    assert days == ["date=2026-01-05", "date=2026-01-06"]
    assert hive(tmp_path / "c", "snapshots").count_rows() == 6


def test_a_second_writer_never_overwrites_a_segment_of_the_same_name(tmp_path):
    # a later process can have the same pid (a container's recorder often does), its serial starts
    # again at 1 and a seeded simulator's first row has the same time: the same file name
    for _run in range(2):
        w = CatalogWriter(tmp_path / "c")
        w.add_snapshot(quote("T", SIM_START_MS), "x")
        w.close()
    assert len(cat.files(tmp_path / "c", "snapshots")) == 2
    assert hive(tmp_path / "c", "snapshots").count_rows() == 2  # neither run's row lost


def test_exact_units_refuse_what_they_cannot_hold():
    assert cat.to_cc(Decimal("0.4230")) == 4230 and cat.from_cc(4230) == Decimal("0.4230")
    assert (
        cat.to_hundredths(Decimal("2.50")) == 250
        and cat.from_hundredths(250) == Decimal("2.5")
        and cat.from_hundredths(300) == 3
    )
    with pytest.raises(ValueError):
        cat.to_cc(Decimal("0.42305"))
    with pytest.raises(ValueError):
        cat.to_hundredths(Decimal("0.005"))


def test_one_writer_per_catalog_and_a_dead_writers_temp_file_is_invisible_then_removed(tmp_path):
    w = CatalogWriter(tmp_path / "c")
    with pytest.raises(KakashiError, match="already recording"):
        CatalogWriter(tmp_path / "c")
    w.add_market(market(), SIM_START_MS)
    w.add_estimate(Estimate(ticker="T", p_hat=Decimal("0.5"), source="x", ts=SIM_START_MS))
    w.close()
    folder = tmp_path / "c" / "markets" / "date=2026-01-05"
    stale = folder / ".part-9999999999999-1-000001.parquet.tmp"
    stale.write_bytes(b"PAR1 half a file")
    assert hive(tmp_path / "c", "markets").count_rows() == 1  # readers skip it
    assert len(cat.files(tmp_path / "c", "markets")) == 1
    CatalogWriter(tmp_path / "c").close()  # the next writer cleans up
    assert not stale.exists()


def test_kill_9_while_recording_leaves_a_readable_dataset(capfd, tmp_path):
    root = tmp_path / "catalog"
    p = subprocess.Popen(
        [
            *KAKASHI,
            "record",
            "--db",
            str(tmp_path / "k.db"),
            "--catalog",
            str(root),
            "--seed",
            "3",
            "--roll",
            "0.05",
            "--interval",
            "0.002",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(root.glob("snapshots/*/*.parquet"))) < 5:
            time.sleep(0.05)
        assert len(list(root.glob("snapshots/*/*.parquet"))) >= 5, p.stderr.read() if p.poll() is not None else ""
        time.sleep(0.13)  # land somewhere in the middle of the next segment
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    for table in ("snapshots", "markets", "estimates"):  # (no trade prints without the WebSocket)
        t = hive(root, table).to_table()  # every visible file is a whole Parquet file
        if table == "snapshots":
            # whole passes: twelve markets each (8, and one bracket event of 4: [sim] bracket_events)
            assert t.num_rows >= 5 * 12 and t.num_rows % 12 == 0
    for f in root.glob("*/*/*.parquet"):
        pq.ParquetFile(f).metadata  # noqa: B018 - raises on a torn file
    # the catalog works after the crash: info reads it, a new recorder takes the lock and goes on
    info = in_process(capfd, "catalog", "info", "--catalog", str(root))
    assert info.returncode == 0 and "snapshots" in info.stdout
    again = in_process(
        capfd, "record", "--db", str(tmp_path / "k.db"), "--catalog", str(root), "--passes", "2", "--quiet"
    )
    assert again.returncode == 0, again.stderr
    assert not list(root.glob("*/*/.*.tmp"))


def test_import_from_an_old_database_and_from_jsonl_then_info(capfd, tmp_path):
    e = make_engine(tmp_path / "old.db")
    for _ in range(40):
        e.tick()
    e.store.close()
    p = in_process(capfd, "catalog", "import", "--from-db", str(tmp_path / "old.db"), "--catalog", str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    n = sqlite3.connect(tmp_path / "old.db").execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    assert f"{n} snapshots" in p.stdout and hive(tmp_path / "c", "snapshots").count_rows() == n
    f = tmp_path / "in.jsonl"
    f.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"type": "market", "ticker": "B", "series": "S"},
                {
                    "type": "snapshot",
                    "ticker": "B",
                    "ts": SIM_START_MS + 86_400_000,
                    "yes_bid": "0.40",
                    "yes_ask": "0.45",
                },
                {
                    "type": "snapshot",
                    "ticker": "B",
                    "ts": SIM_START_MS + 86_400_000,
                    "yes_bid": "0.50",
                    "yes_ask": "0.45",
                },
                {
                    "type": "estimate",
                    "ticker": "B",
                    "ts": SIM_START_MS + 86_400_000,
                    "p_hat": "0.6",
                    "source": "beliefs-file",
                },
            ]
        )
        + "\nnot json\n"
    )
    p = in_process(capfd, "catalog", "import", "--input", str(f), "--catalog", str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    assert "1 snapshots" in p.stdout and "2 rows rejected" in p.stdout and "crossed" in p.stdout
    p = in_process(capfd, "catalog", "info", "--catalog", str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert any(ln.startswith("2026-01-05") and f"{n:,}" in ln and " 8 " in ln for ln in lines)
    assert any(ln.startswith("2026-01-06") for ln in lines) and "2 day(s)" in lines[-1]
    for args in (["--from-db", str(tmp_path / "nope.db")], ["--input", str(tmp_path / "nope.jsonl")]):
        p = in_process(capfd, "catalog", "import", *args, "--catalog", str(tmp_path / "c"))
        assert p.returncode != 0 and p.stderr.startswith("kakashi: error:") and "Traceback" not in p.stderr


def test_catalog_defaults_to_a_folder_beside_the_database(capfd, tmp_path):
    p = in_process(capfd, "record", "--db", str(tmp_path / "d" / "k.db"), "--passes", "3", "--quiet")
    assert p.returncode == 0, p.stderr
    # the default simulator: 8 markets and one bracket event of 4 ([sim] bracket_events)
    assert "recorded 3 passes" in p.stdout and "36 snapshots" in p.stdout
    assert hive(tmp_path / "d" / "catalog", "snapshots").count_rows() == 36
    assert hive(tmp_path / "d" / "catalog", "estimates").count_rows() > 0  # beliefs are recorded, not traded
    assert sqlite3.connect(tmp_path / "d" / "k.db").execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0


def test_a_headless_run_records_as_it_trades_and_its_replay_gives_the_same_fills_and_cash(capfd, tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text('[risk]\ndaily_loss_cap_pct = "1"\n[sim]\nmarkets = 12\nstep_seconds = 600\n')
    run = in_process(
        capfd,
        "run",
        "--headless",
        "--ticks",
        "150",
        "--seed",
        "5",
        "--db",
        str(tmp_path / "live.db"),
        "--config",
        str(cfg),
    )
    assert run.returncode == 0, run.stderr
    root = tmp_path / "catalog"  # beside the database
    assert hive(root, "snapshots").count_rows() == 150 * (12 + 4)  # (and one bracket event of 4)
    rep = in_process(capfd, "replay", "--catalog", str(root), "--db", str(tmp_path / "replay.db"), "--config", str(cfg))
    assert rep.returncode == 0, rep.stderr
    assert "replayed 150 ticks" in rep.stdout
    live, replay = tables(tmp_path / "live.db"), tables(tmp_path / "replay.db")
    assert live["fills"] and live["fills"] == replay["fills"]
    cash = lambda t: sum(r[5] for r in t["ledger"])
    assert cash(live) == cash(replay)
    off = in_process(
        capfd, "run", "--headless", "--ticks", "3", "--no-record", "--db", str(tmp_path / "quiet" / "k.db")
    )
    assert off.returncode == 0 and not (tmp_path / "quiet" / "catalog").exists()


def test_sigterm_flushes_what_the_recorder_holds(tmp_path):
    root = tmp_path / "catalog"
    p = subprocess.Popen(
        [
            *KAKASHI,
            "record",
            "--db",
            str(tmp_path / "k.db"),
            "--catalog",
            str(root),
            "--roll",
            "3600",
            "--interval",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None
        lines = [p.stdout.readline() for _ in range(4)]  # the banner and three passes
        assert lines[-1].startswith("pass 3") and not list(root.glob("snapshots/*/*.parquet"))  # all still buffered
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    n = hive(root, "snapshots").count_rows()
    assert n >= 3 * 12 and n % 12 == 0 and f"{n} snapshots" in out  # 8 markets, a bracket event of 4
