"""Hostile input against the market-data catalog (issue #20): WebSocket rows that would blind
the engine, rows dated ahead that would poison a replay's clock, segments `catalog info`
must report, and the small data rules (exact beliefs, imports run twice, a market listed
three times in one page)."""

from __future__ import annotations

import sqlite3
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter
from kakashi_tui.adapters.columnar import Timeline
from tests.conftest import SIM_START_MS
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


@pytest.mark.parametrize(
    "when, reason",
    [(Y2099_MS, "snapshot dated ahead of the catalog's clock"), (Y9999_MS, "is outside 2000-01-01..2100-01-01")],
)
def test_one_row_dated_far_ahead_does_not_become_the_replays_clock(tmp_path, when, reason):
    root, _cash = record_sim(tmp_path, ticks=300)
    run(tmp_path / "clean.db", root)
    clean = tables(tmp_path / "clean.db")
    assert len(clean["decisions"]) > 50
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
                **{c: pa.array([None] * n, pa.int64()) for c in ("yes_bid_e4", "yes_ask_e4", "last_e4")},
                "volume_e2": pa.array([0] * n, pa.int64()),
                "yes_bids": pa.array([[]] * n, pa.list_(cat.LEVEL)),
                "no_bids": pa.array([[]] * n, pa.list_(cat.LEVEL)),
                "source": ["x"] * n,
                "recv_ts": pa.array(part, pa.int64()),
            }
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
