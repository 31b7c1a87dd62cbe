"""Trade prints as of Kalshi's spec 3.34 (issue #22, item 1), over the loopback WebSocket:
``taker_outcome_side`` / ``taker_book_side`` read first, ``taker_side`` the fallback;
``ts_ms`` over ``ts``; the frame's ``sending_ts_ms`` kept; ``is_block_trade`` stored and never
book liquidity; and the catalog's version-3 trades read beside version-2 files."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter, Recorder
from kakashi_tui.adapters.kalshi.wire import Trade, book_prints
from kakashi_tui.adapters.kalshi.ws import BookFeed, LiveBookSource
from kakashi_tui.adapters.source import FetchBatch, Source
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS
from tests.integration.loopback_ws import wait_for

TICKERS = ("KXA-1", "KXB-2")
NOW_MS = 1_795_651_260_000  # the feed's clock: a minute after the prints below
PRINT_S = 1_795_651_200


class Quiet(Source):
    name = "kalshi"

    def now_ms(self):
        return NOW_MS

    def fetch(self):
        return FetchBatch(rows=[])


@pytest.fixture
def ws():
    # spec 3.20 mode: each print goes out exactly as its test shapes it (3.34 mode would add the
    # new fields to a print written in the old shape)
    s = FakeKalshiWS(TICKERS, interval=0.005, spec="3.20")
    s.start()
    yield s
    s.stop()


def record_prints(ws, tmp_path, sends, want, keep_running=False):
    """Send ``sends`` (frame, fields) over the loopback WebSocket; the catalog's trade rows whose
    ids are in ``want``, once all have arrived."""
    rec = Recorder(CatalogWriter(tmp_path / "c"))
    feed = BookFeed(ws.url, backoff_base=0.02, clock=lambda: NOW_MS)
    feed.watch(TICKERS)
    got: list[Trade] = []
    src = LiveBookSource(
        Quiet(), feed, also=lambda: set(TICKERS), on_trades=lambda ts: (got.extend(ts), rec.trades(ts))
    )
    feed.start()
    try:
        assert wait_for(lambda: feed.live)
        for frame, fields in sends:
            ws.send_trade(frame, **fields)

        def arrived():
            src.fetch()
            return want <= {t.trade_id for t in got}

        assert wait_for(arrived)
        books = feed.books()
    finally:
        if not keep_running:
            feed.stop()
        rec.close()
    rows = [r for r in cat.read_table(tmp_path / "c", "trades").to_pylist() if r["trade_id"] in want]
    return {r["trade_id"]: r for r in rows}, [t for t in got if t.trade_id in want], books, feed


def test_new_fields_are_read_and_the_old_ones_are_the_fallback(ws, tmp_path):
    sends = [
        (  # 3.34: outcome and book side, ts_ms, the frame's sending time; taker_side deprecated (and stale)
            {"sending_ts_ms": 1_795_651_200_250},
            {
                "trade_id": "new",
                "taker_side": "yes",
                "taker_outcome_side": "no",
                "taker_book_side": "bid",
                "ts": PRINT_S,
                "ts_ms": 1_795_651_200_123,
                "is_block_trade": False,
            },
        ),
        ({}, {"trade_id": "old", "taker_side": "yes", "ts": PRINT_S + 1}),  # spec 3.20: seconds, taker_side
        (  # ts_ms missing in practice: the seconds
            {},
            {"trade_id": "no-ms", "taker_outcome_side": "yes", "taker_side": None, "ts": PRINT_S + 2},
        ),
    ]
    rows, _, _, _ = record_prints(ws, tmp_path, sends, {"new", "old", "no-ms"})
    new, old, no_ms = rows["new"], rows["old"], rows["no-ms"]
    assert (new["ts"], new["taker_side"], new["taker_book_side"]) == (1_795_651_200_123, "no", "bid")
    assert (new["is_block_trade"], new["sending_ts_ms"]) == (False, 1_795_651_200_250)
    assert (old["ts"], old["taker_side"]) == ((PRINT_S + 1) * 1000, "yes")
    assert old["taker_book_side"] is None and old["is_block_trade"] is None and old["sending_ts_ms"] is None
    assert (no_ms["ts"], no_ms["taker_side"]) == ((PRINT_S + 2) * 1000, "yes")
    assert all(r["source"] == "kalshi-ws" for r in rows.values())


def test_a_block_print_is_stored_flagged_and_never_counted_as_book_liquidity(ws, tmp_path):
    sends = [
        ({}, {"trade_id": "block", "is_block_trade": True, "count_fp": "5000.00", "ts": PRINT_S}),
        ({}, {"trade_id": "lit", "is_block_trade": False, "count_fp": "3.00", "ts": PRINT_S}),
    ]
    rows, got, _, feed = record_prints(ws, tmp_path, sends, {"block", "lit"}, keep_running=True)
    try:
        assert rows["block"]["is_block_trade"] is True and rows["block"]["count_hundredths"] == 500_000
        assert [t.trade_id for t in book_prints(got)] == ["lit"]  # what a liquidity reader may count
        ws.paused = True  # the server's books still: the feed's equal them, 5,000 contracts of print or not
        assert wait_for(
            lambda: {t: {"yes": b.yes, "no": b.no} for t, b in feed.books().items()} == {t: ws.book(t) for t in TICKERS}
        )
    finally:
        ws.paused = False
        feed.stop()


def test_a_malformed_new_field_refuses_the_print_alone(ws, tmp_path):
    rec_rows = []
    feed = BookFeed(ws.url, backoff_base=0.02, clock=lambda: NOW_MS)
    feed.watch(TICKERS)
    src = LiveBookSource(Quiet(), feed)
    feed.start()
    try:
        assert wait_for(lambda: feed.live)
        ws.send_trade(trade_id="bad-block", is_block_trade="yes", ts=PRINT_S)
        ws.send_trade(trade_id="bad-book-side", taker_book_side="buy", ts=PRINT_S)
        ws.send_trade({"sending_ts_ms": 10**30}, trade_id="bad-sent", ts=PRINT_S)  # not a time: none kept

        def refused():
            rec_rows.extend(r for r in src.fetch().rows if r.reason)
            return len(rec_rows) >= 3

        assert wait_for(refused)
    finally:
        feed.stop()
    assert sorted(r.reason for r in rec_rows) == [
        "trade print: is_block_trade yes is not true or false",
        "trade print: taker_book_side 'buy' is not bid or ask",
        "trade print: ts 1000000000000000000000000000000 is outside 2000-01-01..2100-01-01 in epoch ms",
    ]


def v2_file(path):
    """A version-3 trades segment rewritten as version 2 wrote it (no 3.34 columns)."""
    t = pq.read_table(path)
    t = t.drop_columns(["taker_book_side", "is_block_trade", "sending_ts_ms"])
    meta = {**t.schema.metadata, b"kakashi.catalog_version": b"2"}
    pq.write_table(t.replace_schema_metadata(meta), path)


def test_version_3_trades_read_beside_version_2_files(tmp_path):
    root = tmp_path / "c"
    w = CatalogWriter(root)
    w.add_trade(NOW_MS - 2000, "KXA-1", 4200, 300, "yes", "t-v2", "kalshi-ws")
    w.close()
    (old,) = sorted((root / "trades").rglob("*.parquet"))
    v2_file(old)
    assert cat.file_version(pq.read_schema(old)) == 2 and "is_block_trade" not in pq.read_schema(old).names
    w = CatalogWriter(root)
    w.add_trade(NOW_MS - 1000, "KXA-1", 4300, 500, "no", "t-v3", "kalshi-ws", NOW_MS, "ask", True, NOW_MS - 900)
    w.close()
    rows = {r["trade_id"]: r for r in cat.read_table(root, "trades").to_pylist()}
    assert (rows["t-v2"]["taker_book_side"], rows["t-v2"]["is_block_trade"], rows["t-v2"]["sending_ts_ms"]) == (
        None,
        None,
        None,
    )
    assert (rows["t-v3"]["taker_book_side"], rows["t-v3"]["is_block_trade"], rows["t-v3"]["sending_ts_ms"]) == (
        "ask",
        True,
        NOW_MS - 900,
    )
    assert cat.read_table(root, "trades", ["trade_id", "is_block_trade"]).schema.field("is_block_trade").type == (
        pa.bool_()
    )
    (day,) = cat.info(root)
    assert day.rows["trades"] == 2
