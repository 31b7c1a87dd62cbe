"""Order-book snapshots and deltas from the WebSocket recorded into the catalog's
``book_deltas`` table, and the books rebuilt from them equal the books the feed held."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from kakashi_tui.adapters.catalog import BOOK_DELTAS, read_table, rebuild_books, utc_date
from kakashi_tui.adapters.kalshi.ws import BookFeed
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS
from tests.integration.loopback_ws import signed_loopback, wait_for


def row(kind, ticker="T", side=None, price=None, delta=None, seq=None, sid=None, ts=1):
    return {
        "ts": ts,
        "ticker": ticker,
        "kind": kind,
        "side": side,
        "price_cc": price,
        "delta_hundredths": delta,
        "seq": seq,
        "sid": sid,
    }


def test_the_rebuild_rule_snapshot_starts_over_delta_adds_reset_forgets():
    stream = [
        row("delta", "A", "yes", 4000, 100, 1, 1),  # before any snapshot: unknown, skipped
        row("snapshot", "A", "yes", 4000, 500, 2, 1),
        row("snapshot", "A", "no", 5500, 300, 2, 1),
        row("snapshot", "B", None, None, None, 3, 1),  # an empty book is still a book
        row("delta", "A", "yes", 4000, -500, 4, 1),
        row("delta", "A", "yes", 4100, 200, 5, 1),
        row("delta", "B", "no", 100, 700, 6, 1),
        row("reset", "B"),
        row("delta", "B", "no", 100, 700, 7, 1),  # after a reset: unknown until its snapshot
        row("snapshot", "C", "yes", 100, 100, 8, 1),
        row("reset", "C"),
        row("snapshot", "C", "yes", 200, 300, 1, 2),  # resubscribed: a new sid
        row("snapshot", "C", "no", 9000, 100, 1, 2),
    ]
    assert rebuild_books(stream) == {
        "A": {"yes": {4100: 200}, "no": {5500: 300}},
        "C": {"yes": {200: 300}, "no": {9000: 100}},
    }
    # two snapshots in a row for one ticker (different seq): the second replaces the first
    assert rebuild_books([row("snapshot", "A", "yes", 1, 1, 1, 1), row("snapshot", "A", "no", 2, 2, 2, 1)]) == {
        "A": {"yes": {}, "no": {2: 2}}
    }
    # a later run (another process) whose subscription reuses sid 1, seq 1: its own snapshot
    assert rebuild_books(
        [row("snapshot", "A", "yes", 1, 1, 1, 1, ts=5), row("snapshot", "A", "no", 2, 2, 1, 1, ts=9)]
    ) == {"A": {"yes": {}, "no": {2: 2}}}


def test_a_recording_run_with_a_key_records_every_book_change_and_rebuilds_the_feeds_books(tmp_path, monkeypatch):
    from kakashi_tui.trading.runtime import Options, build_collector

    tickers = ("KXFAKE-26JAN05-T00", "KXFAKE-26JAN05-T01")
    root = tmp_path / "catalog"
    with signed_loopback(tmp_path, monkeypatch, tickers, interval=0.005, roll_seconds=0.2) as (ws, cfg):
        opts = Options(source="kalshi", db=str(tmp_path / "k.db"), tickers=list(tickers), catalog=str(root))
        service, rec, close = build_collector(opts, cfg)
        try:
            feed = service._engine.source.inner.feed  # (the test looks inside; front-ends never do)
            assert wait_for(lambda: feed.live and len(feed.books()) == 2, step=service.collect)
            assert wait_for(lambda: ws.deltas_sent > 100, step=service.collect)
            ws.gap()  # the feed resubscribes: the recorded stream says where its books restart
            assert wait_for(lambda: feed.health.gaps >= 1 and len(feed.books()) == 2, step=service.collect)
            assert wait_for(lambda: rec.writer.files_written > 0, step=service.collect)  # segments roll
            sent = ws.deltas_sent
            assert wait_for(lambda: ws.deltas_sent > sent + 50, step=service.collect)
            ws.paused = True
            assert wait_for(
                lambda: all(
                    t in feed.books() and {"yes": feed.books()[t].yes, "no": feed.books()[t].no} == ws.book(t)
                    for t in tickers
                )
            )
            service.collect()
            held = {t: {"yes": b.yes, "no": b.no} for t, b in feed.books().items()}
        finally:
            close()  # the last segment, with what the feed applied since the last pass

    # any Parquet reader: the hive partition and the schema as documented
    dataset = ds.dataset(root / "book_deltas", format="parquet", partitioning="hive")
    assert dataset.schema.remove(dataset.schema.get_field_index("date")).equals(BOOK_DELTAS, check_metadata=False)
    t = dataset.to_table()
    rows = read_table(root, "book_deltas").to_pylist()  # files by name, rows by position: recorded order
    assert sorted(t.column("date").to_pylist()) == sorted(utc_date(r["ts"]) for r in rows)
    kinds = [r["kind"] for r in rows]
    assert t.num_rows == len(rows) and kinds.count("delta") > 100
    assert {r["source"] for r in rows} == {"kalshi-ws"}
    assert all(r["ticker"] in tickers for r in rows)
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    # the gap: each book was reset, then a fresh snapshot (get_snapshot: on the same subscription)
    assert kinds.count("reset") >= 2
    first_reset = kinds.index("reset")
    assert "snapshot" in kinds[first_reset:]
    deltas = [r for r in rows if r["kind"] == "delta"]
    assert all(r["side"] in ("yes", "no") and r["delta_hundredths"] != 0 and 0 < r["price_cc"] < 10_000 for r in deltas)
    runs: list[list[int]] = [[]]  # between two resets or snapshots, sequence numbers only go up by one
    for r in rows:
        if r["kind"] == "delta":
            runs[-1].append(r["seq"])
        elif runs[-1]:
            runs.append([])
    assert all(seqs == list(range(seqs[0], seqs[0] + len(seqs))) for seqs in runs if seqs)

    assert rebuild_books(rows) == held
    assert all(max(b["yes"], default=0) + max(b["no"], default=0) < 10_000 for b in held.values())  # never crossed
    assert held == {t: ws.book(t) for t in tickers}

    from kakashi_tui.adapters.catalog import info

    days = info(root)
    assert sum(d.rows["book_deltas"] for d in days) == len(rows)


def test_catalog_info_counts_book_rows(tmp_path, capsys):
    from kakashi_tui.adapters.catalog import CatalogWriter
    from kakashi_tui.frontends.cli.catalog import _info

    w = CatalogWriter(tmp_path / "c")
    for i in range(3):
        w.add_book_event(
            1_795_651_200_000 + i,
            "KXA-1",
            "yes",
            4200,
            100 * (i + 1),
            i + 1,
            1,
            "snapshot" if i == 0 else "delta",
            "kalshi-ws",
        )
    w.close()
    assert _info(tmp_path / "c") == 0
    out = capsys.readouterr().out
    assert "book rows" in out
    day = next(line for line in out.splitlines() if line.startswith("2026-11-26"))
    assert day.split()[6] == "3"  # date, snapshots, markets, changes, estimates, trades, book rows


def test_catalog_info_counts_the_commands_and_the_other_replay_inputs(tmp_path, capsys):
    from kakashi_tui.adapters.catalog import CatalogWriter
    from kakashi_tui.frontends.cli.catalog import _info

    w = CatalogWriter(tmp_path / "c")
    t0 = 1_795_651_200_000
    assert w.add_command(t0, 1, None, "kill", "operator", source="sim") is None
    assert w.add_command(t0 + 5, 2, None, "rearm", source="sim") is None
    w.add_seen(t0, ["KXA-1", "KXB-2"], "sim")
    w.close()
    assert _info(tmp_path / "c") == 0
    also = [line for line in capsys.readouterr().out.splitlines() if line.startswith("also")]
    assert also == ["also        2 operator commands, 1 tick of markets seen unchanged"]


@pytest.fixture
def server():
    s = FakeKalshiWS(("KXA-1", "KXB-2"), interval=0.005)
    s.start()
    yield s
    s.stop()


def test_a_recording_nobody_drains_is_bounded_and_restarts_at_fresh_snapshots(server):
    feed = BookFeed(server.url, backoff_base=0.02, backoff_max=0.2, record_books=True, max_book_events=40)
    feed.watch(("KXA-1", "KXB-2"))
    feed.start()
    try:
        assert wait_for(lambda: feed.health.record_overflows >= 2)
        server.paused = True  # (deltas already sent still arrive, and may overflow once more)
        got, takes = [], []

        def slow_recorder_caught_up():
            takes.append(feed.take_book_events())
            got.extend(takes[-1])
            books = {t: {"yes": b.yes, "no": b.no} for t, b in feed.books().items()}
            return (
                feed.live
                and len(books) == 2
                and books == {t: server.book(t) for t in books}
                and rebuild_books(e._asdict() for e in got) == books
            )

        assert wait_for(slow_recorder_caught_up)
        assert all(sum(e.kind == "delta" for e in take) <= 40 for take in takes)  # bounded, whatever waits
    finally:
        feed.stop()


def test_without_recording_the_feed_keeps_no_events(server):
    feed = BookFeed(server.url, backoff_base=0.02)
    feed.watch(("KXA-1",))
    feed.start()
    try:
        assert wait_for(lambda: feed.live and server.deltas_sent > 20)
        assert feed.take_book_events() == [] and feed._events is None
    finally:
        feed.stop()
