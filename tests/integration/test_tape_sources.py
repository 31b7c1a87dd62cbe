"""What paper orders fill on, from the sources (issue #23): the simulator's tape is the one a replay
of its recording makes (adapters/tape.py's one rule), and a recording keeps what a replay needs
of a tick besides the market data (catalog ``fill_context``: the measured round trip, polled books)."""

from __future__ import annotations

from kakashi_tui.adapters.catalog import CatalogWriter, Recorder
from kakashi_tui.adapters.columnar import CatalogSource
from kakashi_tui.adapters.source import FetchBatch, Source, TapeBook
from kakashi_tui.adapters.tape import BookRow, PrintRow, TapeBuilder
from tests.conftest import SIM_START_MS
from tests.integration.test_engine import NOW, row


class Timed(Source):
    """A source that measured its round trips (Kalshi's client does) and polled its books."""

    name = "timed"

    def __init__(self):
        self.now, self.rt = NOW, 123

    def now_ms(self):
        return self.now

    def round_trip_ms(self):
        return self.rt

    def fetch(self):
        return FetchBatch(rows=[row(ts=self.now)], polled={"T"})


def test_the_recorded_round_trip_and_polled_books_replay_as_the_run_had_them(tmp_path):
    """``[fills] insert_latency_ms = "auto"`` is the source's measured round trip: the catalog keeps
    it (when it changes) and which held books were polled (catalog version 4, ``fill_context``),
    and a replay hands both back at the same ticks."""
    writer = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"))
    rec = Recorder(writer)
    src, _ests = rec.wrap(Timed(), [])
    for now, rt in ((NOW, 123), (NOW + 1_000, 123), (NOW + 2_000, 87)):
        src.inner.now, src.inner.rt = now, rt
        src.fetch()
    writer.close()
    rows = CatalogSource(tmp_path / "catalog")
    rows.watch(lambda: {"T"})
    seen = []
    while rows.has_next():
        b = rows.fetch()
        seen.append((rows.now_ms(), rows.round_trip_ms(), b.polled))
    assert seen == [(NOW, 123, {"T"}), (NOW + 1_000, 123, {"T"}), (NOW + 2_000, 87, {"T"})]


def test_the_simulators_tape_is_the_one_its_recording_replays(tmp_path):
    """The simulator hands the followed markets' prints and books to the engine; a replay of its
    catalog makes the tape from the recorded trades and book_deltas (adapters/tape.py): the same
    entries, in the same order."""
    from kakashi_tui.adapters.sim import SimExchange

    events, trades = [], []
    sim = SimExchange(seed=3, markets=3, start_ms=SIM_START_MS, on_book_events=events.extend, on_trades=trades.extend)
    followed = {sim.live[0].ticker, sim.live[1].ticker}
    sim.watch(lambda: followed)
    builder = TapeBuilder()
    live = rebuilt = 0
    for step in range(30):
        batch = sim.fetch()
        book_rows = [BookRow(*e[:9]) for e in events]
        prints = [
            PrintRow(t.recv_ts, t.ticker, t.yes_price_cc, t.count_hundredths, t.taker_side, t.taker_book_side,
                     t.is_block_trade, t.ts)
            for t in trades
        ]  # fmt: skip
        events.clear()
        trades.clear()
        replayed = builder.tape(book_rows, prints, followed)
        if step == 0:
            continue  # (the recording's first step sends the books whole; the tape starts after)
        assert [(type(x).__name__, x.ts, getattr(x, "ticker", None)) for x in batch.tape] == [
            (type(x).__name__, x.ts, getattr(x, "ticker", None)) for x in replayed
        ]
        for a, b in zip(batch.tape, replayed):
            assert getattr(a, "print", None) == getattr(b, "print", None)
            if isinstance(a, TapeBook):
                assert a.quote._depth == b.quote._depth and a.snapshot == b.snapshot
        live += len(batch.tape)
        rebuilt += len(replayed)
    assert live == rebuilt > 30


def test_a_recorded_print_is_replayed_at_the_tick_that_received_it(tmp_path):
    """The catalog keeps when each print was received (``trades.recv_ts``, catalog version 7): a
    simulator step's prints come with its fetch, after their own times, and a replay of the
    recording hands each to the fill models at that tick, stamped with it, as the run's tape did.
    (Without the column the replay read a print at its own time: a tick early, stamped earlier.)"""
    from kakashi_tui.adapters import catalog as cat
    from kakashi_tui.adapters.sim import SimExchange
    from kakashi_tui.adapters.source import TapePrint

    writer = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"))
    rec = Recorder(writer)
    hooks = {"on_trades": rec.trades, "on_book_events": rec.book_events}
    sim = SimExchange(seed=3, markets=3, start_ms=SIM_START_MS, prints_per_step=3.0, **hooks)
    src, _ests = rec.wrap(sim, [])
    followed = {sim.live[0].ticker, sim.live[1].ticker}
    sim.watch(lambda: followed)
    live = []
    for _ in range(12):
        batch = src.fetch()
        live += [(src.now_ms(), e.ticker, e.print) for e in batch.tape if isinstance(e, TapePrint)]
    rec.close()
    replay = CatalogSource(tmp_path / "catalog")
    replay.watch(lambda: followed)
    replayed = []
    while replay.has_next():
        batch = replay.fetch()
        replayed += [(replay.now_ms(), e.ticker, e.print) for e in batch.tape if isinstance(e, TapePrint)]
    assert len(live) > 10 and replayed == live
    assert all(p.ts == now for now, _t, p in live)
    stored = cat.read_table(tmp_path / "catalog", "trades").to_pylist()
    assert stored and all(r["recv_ts"] > r["ts"] for r in stored)  # (a step's prints: strictly between steps)
