"""Columnar replay of a catalog: parity with the row engine, and the vectorised check held
equal to the row check."""

import json
import sqlite3
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter, import_ticks
from kakashi_tui.adapters.columnar import QUIET_SIDES, CatalogSource, Filters, check_batch, replay_catalog
from kakashi_tui.adapters.replay import group_ticks, read_jsonl
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import Estimate, Market
from kakashi_tui.core.validate import validate_row
from kakashi_tui.trading.config import KakashiConfig, RiskSection, SimSection, StrategySection
from kakashi_tui.trading.engine import Engine
from tests.clirun import in_process
from tests.conftest import SIM_START_MS, book, make_engine
from tests.integration.test_replay import tables

#: Settlements every few ticks and a daily stop on three of four simulated days.
STOPPY = KakashiConfig(risk=RiskSection(daily_loss_cap_pct=Decimal("1")), sim=SimSection(markets=12, step_seconds=600))


def record_sim(tmp_path, ticks=500, cfg=STOPPY):
    writer = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"), max_rows=1500)  # several segments
    live = make_engine(tmp_path / "live.db", cfg=cfg, catalog=writer)
    for _ in range(ticks):
        live.tick()
    writer.close()
    live.store.close()
    return tmp_path / "catalog", cash_of(tmp_path / "live.db")


def cash_of(db):
    """Cash: the sum of the ledger's amounts (in whatever unit the ledger keeps)."""
    return sum(r[5] for r in tables(db)["ledger"])


def tick_rows(db):
    """The ticks table without what a replay may count differently (wall time, rows saved)."""
    c = sqlite3.connect(db)
    c.row_factory = sqlite3.Row
    try:
        skip = {"id", "wall_ms", "latency_ms", "saved", "rejected"}
        return [{k: r[k] for k in r.keys() if k not in skip} for r in c.execute("SELECT * FROM ticks ORDER BY tick")]
    finally:
        c.close()


def run(path, root, cfg=STOPPY, columnar=True, **kw):
    store = Store(path)
    ec = cfg.engine_config()
    engine, stats = replay_catalog(
        root,
        lambda src, ests: Engine(store, src, ests, ec),
        every_row=not columnar,
        edge_threshold=ec.strategy.edge_threshold,
        fee_multipliers=[ec.taker_fee_multiplier, *ec.series_fee_multipliers.values()],
        mode=ec.strategy.mode,
        **kw,
    )
    eq = engine.equity()
    store.close()
    return cash_of(path), eq, stats


def events(db):
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT ts, kind, detail FROM events ORDER BY id").fetchall()
    finally:
        c.close()


def test_sim_run_recorded_then_replayed_row_by_row_and_columnar_gives_identical_books(tmp_path):
    root, live_cash = record_sim(tmp_path)
    live = tables(tmp_path / "live.db")
    assert live["fills"] and any(r[1] == "settle" for r in live["ledger"])
    assert sum(1 for e in events(tmp_path / "live.db") if e[1] == "daily_stop") >= 2

    rows_cash, rows_eq, rows_st = run(tmp_path / "rows.db", root, columnar=False)
    col_cash, col_eq, col_st = run(tmp_path / "col.db", root)
    rows, col = tables(tmp_path / "rows.db"), tables(tmp_path / "col.db")
    assert col == rows  # decisions (with their tick numbers), fills, ledger
    assert (col_cash, col_eq) == (rows_cash, rows_eq)
    assert col_st.ticks == rows_st.ticks == 500 and col_st.snapshots == 500 * 12
    assert col_st.rows_decided < col_st.snapshots  # only some rows went through the per-row code
    stops = lambda db: [e for e in events(db) if e[1] in ("daily_stop", "day_start")]
    assert stops(tmp_path / "col.db") == stops(tmp_path / "rows.db") and stops(tmp_path / "col.db")
    # and the replay reproduces the live run (its clock started one step before the first
    # recorded tick: only the deposit's time differs, unless the replay is told the start)
    assert col["fills"] == live["fills"] and col["decisions"] == live["decisions"]
    assert col["ledger"][1:] == live["ledger"][1:] and col_cash == live_cash
    run(tmp_path / "started.db", root, start_ms=SIM_START_MS)
    assert tables(tmp_path / "started.db") == live
    # every tick is an engine tick in both (the equity curve is whole)
    assert tick_rows(tmp_path / "rows.db") == tick_rows(tmp_path / "col.db")
    assert len(tick_rows(tmp_path / "col.db")) == 500


def kalshi_records(T):
    """Kalshi-shaped data: fixed-point strings, one-sided and quiet books, beliefs, a settlement."""
    recs = [
        {"type": "market", "ticker": t, "series": "KXBTC", "close_ts": T + 10 * 3_600_000}
        for t in ("KXBTC-A", "KXBTC-B", "KXETH-C")
    ]
    prices = {"KXBTC-A": 40, "KXBTC-B": 70, "KXETH-C": 20}
    for k in range(1, 120):
        ts = T + k * 30_000
        for t, mid in prices.items():
            mid = max(5, min(90, mid + (k * 7 + len(t)) % 5 - 2))
            prices[t] = mid
            if t == "KXETH-C" and k % 9 == 0:  # one-sided: nobody bids YES
                recs.append(
                    {
                        "type": "snapshot",
                        "ticker": t,
                        "ts": ts,
                        "yes_bid": None,
                        "yes_ask": f"{(mid + 2) / 100:.4f}",
                        "book": {"yes": [], "no": [[f"{(98 - mid) / 100:.4f}", 300]]},
                    }
                )
                continue
            recs.append(
                {
                    "type": "snapshot",
                    "ticker": t,
                    "ts": ts,
                    "yes_bid": f"{mid / 100:.4f}",
                    "yes_ask": f"{(mid + 2) / 100:.4f}",
                    "last": f"{(mid + 1) / 100:.4f}",
                    "volume": 10 * k,
                    "book": {
                        "yes": [[f"{(mid - i) / 100:.4f}", 100 + i] for i in range(3)],
                        "no": [[f"{(98 - mid - i) / 100:.4f}", 80 + i] for i in range(3)],
                    },
                }
            )
        if k % 20 == 1:
            for t, p in (("KXBTC-A", "0.62"), ("KXBTC-B", "0.41"), ("KXETH-C", "0.35")):
                recs.append({"type": "estimate", "ticker": t, "ts": ts, "p_hat": p, "source": "beliefs-file"})
    recs.append({"type": "settlement", "ticker": "KXBTC-A", "ts": T + 120 * 30_000, "result": "no"})
    return recs


#: The snapshots schema before ``recv_ts`` (the fetch time) was added: such files still replay.
OLD_SNAPSHOTS = cat.SNAPSHOTS.remove(cat.SNAPSHOTS.get_field_index("recv_ts"))
#: what a file in the current format says of itself (one without it is read as version 1)
VERSION = {cat.VERSION_KEY: str(cat.CATALOG_VERSION)}


def foreign_segment(root, T):
    """Rows another tool wrote: a price above $1, crossed, levels not best first, a level of
    no contracts, a null list, a padded ticker, out of time order."""
    day = cat.utc_date(T)
    lv = lambda *pq_: [{"price_cc": p, "qty_hundredths": q} for p, q in pq_]
    rows = [
        (T + 3_000_000, "KXBTC-A", 4200, 4500, 10_100, 0, lv((4200, 100)), []),  # a last trade above $1
        (T + 3_000_000, "KXBTC-B", 5000, 4900, None, 0, [], []),  # crossed
        (T + 3_000_000, "KXBTC-B", 4000, 4500, None, 0, lv((4000, 100), (4100, 100)), []),  # not best first
        (T + 3_000_000, "KXBTC-B", 4000, 4500, None, 0, lv((4000, 0)), []),  # a level of no contracts
        (T + 3_000_000, "KXETH-C", 2000, 2300, None, 0, None, []),  # a null book side
        (T + 3_000_000, " KXETH-C ", 2000, 2300, None, 0, [], lv((7700, 500))),  # padded: pydantic strips it
        (T + 10_000, "KXETH-C", 2000, 2300, None, 0, [], []),  # out of time order
    ]
    cols = list(zip(*rows))
    table = pa.Table.from_arrays(
        [
            pa.array(cols[0], pa.int64()),
            pa.array(cols[1]),
            pa.array(cols[2], pa.int64()),
            pa.array(cols[3], pa.int64()),
            pa.array(cols[4], pa.int64()),
            pa.array(cols[5], pa.int64()),
            pa.array(cols[6], pa.list_(cat.LEVEL)),
            pa.array(cols[7], pa.list_(cat.LEVEL)),
            pa.array(["other"] * len(rows)),
        ],
        schema=OLD_SNAPSHOTS.remove_metadata().set(0, pa.field("ts", pa.int64())).with_metadata(VERSION),
    )
    folder = root / "snapshots" / f"date={day}"
    pq.write_table(table, folder / f"part-{T + 3_000_000:013d}-foreign.parquet")


def test_kalshi_shaped_catalog_with_foreign_bad_rows_replays_identically_both_ways(tmp_path):
    T = SIM_START_MS
    f = tmp_path / "k.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in kalshi_records(T)))
    w = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"), max_rows=100)  # several segments
    res = import_ticks(group_ticks(read_jsonl(f)), w, "kalshi")
    w.close()
    assert res.rejected == 0 and res.snapshots == 119 * 3 and w.files_written > 3
    foreign_segment(tmp_path / "catalog", T)
    cfg = KakashiConfig()
    rows_cash, _, rows_st = run(tmp_path / "rows.db", tmp_path / "catalog", cfg, columnar=False)
    col_cash, _, col_st = run(tmp_path / "col.db", tmp_path / "catalog", cfg)
    rows, col = tables(tmp_path / "rows.db"), tables(tmp_path / "col.db")
    assert rows["fills"] and any(r[1] == "settle" for r in rows["ledger"])
    assert col == rows and col_cash == rows_cash
    assert col_st.rejected == 6  # the padded ticker is valid, as pydantic says
    rejected = lambda db: sqlite3.connect(db).execute("SELECT COUNT(*) FROM rejected_rows").fetchone()[0]
    assert rejected(tmp_path / "col.db") == rejected(tmp_path / "rows.db") == 6
    reasons = lambda db: sorted(r for (r,) in sqlite3.connect(db).execute("SELECT reason FROM rejected_rows"))
    assert reasons(tmp_path / "col.db") == reasons(tmp_path / "rows.db")
    assert any("outside [0, 1]" in r for r in reasons(tmp_path / "col.db"))
    assert any("out of time order" in r for r in reasons(tmp_path / "col.db"))


def test_filters_pick_markets_and_days(tmp_path):
    root, _ = record_sim(tmp_path, ticks=300)
    _, _, all_st = run(tmp_path / "all.db", root)
    tick = sqlite3.connect(tmp_path / "all.db").execute("SELECT ticker FROM decisions LIMIT 1").fetchone()[0]
    _, _, one = run(tmp_path / "one.db", root, filters=Filters(tickers={tick}))
    got = {t for (t,) in sqlite3.connect(tmp_path / "one.db").execute("SELECT DISTINCT ticker FROM decisions")}
    assert got == {tick} and one.snapshots < all_st.snapshots
    day2 = SIM_START_MS + 86_400_000
    _, _, late = run(tmp_path / "late.db", root, filters=Filters(since_ms=day2))
    c = sqlite3.connect(tmp_path / "late.db")
    assert c.execute("SELECT MIN(ts) FROM ticks").fetchone()[0] >= day2
    assert 0 < late.snapshots < all_st.snapshots
    _, _, none = run(tmp_path / "none.db", root, filters=Filters(series={"NOPE"}))
    assert none.snapshots == 0


def test_replay_catalog_cli(capfd, tmp_path):
    root, cash = record_sim(tmp_path, ticks=200)
    k = ("replay", "--catalog", str(root))
    p = in_process(capfd, *k, "--db", str(tmp_path / "c.db"), "--config", str(_cfg_file(tmp_path)))
    assert p.returncode == 0, p.stderr
    assert "replayed 200 ticks" in p.stdout and cash_of(tmp_path / "c.db") == cash
    p = in_process(capfd, *k, "--db", str(tmp_path / "d.db"), "--since", "2026-13-01")
    assert p.returncode == 2 and "bad date" in p.stderr and "Traceback" not in p.stderr
    p = in_process(capfd, "replay", "--input", "x.jsonl", "--ticker", "A")
    assert p.returncode == 2 and "need --catalog" in p.stderr
    p = in_process(capfd, "replay", "--catalog", str(tmp_path / "nothing"))
    assert p.returncode == 2 and "no catalog at" in p.stderr


def _cfg_file(tmp_path):
    f = tmp_path / "k.toml"
    f.write_text('[risk]\ndaily_loss_cap_pct = "1"\n[sim]\nmarkets = 12\nstep_seconds = 600\n')
    return f


# -- the vectorised check against the row check ------------------------------------------------
PRICES = st.one_of(
    st.none(),
    st.sampled_from([-100, 0, 1, 50, 100, 4200, 4250, 5000, 9900, 9999, 10000, 10100]),
    st.integers(0, 100).map(lambda c: c * 100),
)
QTYS = st.one_of(st.none(), st.sampled_from([-100, 0, 1, 50, 100, 250, 1000, 10_000]))
LEVEL = st.one_of(st.none(), st.fixed_dictionaries({"price_cc": PRICES, "qty_hundredths": QTYS}))


def _sorted_levels(draw_levels):
    # mostly plausible books (best first), sometimes anything
    return st.one_of(
        st.none(),
        st.lists(LEVEL, max_size=4),
        st.lists(st.integers(1, 99), max_size=4, unique=True).map(
            lambda cs: [{"price_cc": c * 100, "qty_hundredths": 100} for c in sorted(cs, reverse=True)]
        ),
    )


ANY_ROW = st.fixed_dictionaries(
    {
        "ts": st.sampled_from([1, SIM_START_MS, SIM_START_MS + 10_000, 0, -5]),
        "ticker": st.sampled_from(["T", "KXBTC-26NOV", " T", "T ", "", "\u00a0T"]),
        "yes_bid_cc": PRICES,
        "yes_ask_cc": PRICES,
        "last_cc": PRICES,
        "volume_hundredths": st.one_of(st.none(), st.sampled_from([0, 100, 250, -300, 12_300])),
        "yes_bids": _sorted_levels(None),
        "no_bids": _sorted_levels(None),
    }
)


@st.composite
def GOOD_ROW(draw):
    """A plainly valid row (one-sided books and quiet depth included)."""
    bid = draw(st.one_of(st.none(), st.integers(1, 97)))
    ask = draw(st.integers((bid or 0) + 1, 99)) if bid is None or draw(st.booleans()) else None

    def side(top):
        if top is None or draw(st.booleans()):
            return []
        prices = (
            [top] + sorted(draw(st.lists(st.integers(1, top - 1), max_size=3, unique=True)), reverse=True)
            if top > 1
            else [top]
        )
        return [{"price_cc": c * 100, "qty_hundredths": draw(st.integers(1, 500)) * 100} for c in prices]

    return {
        "ts": draw(st.sampled_from([1, SIM_START_MS])),
        "ticker": draw(st.sampled_from(["T", "KXBTC-26NOV"])),
        "yes_bid_cc": None if bid is None else bid * 100,
        "yes_ask_cc": None if ask is None else ask * 100,
        "last_cc": draw(st.one_of(st.none(), st.integers(0, 100).map(lambda c: c * 100))),
        "volume_hundredths": draw(st.integers(0, 10**6)) * 100,
        "yes_bids": side(bid),
        "no_bids": side(None if ask is None else 100 - ask),
    }


@st.composite
def MUTATED_ROW(draw):
    """A valid row with one field replaced by anything the wide strategy draws."""
    row = dict(draw(GOOD_ROW()))
    other = draw(ANY_ROW)
    key = draw(st.sampled_from(sorted(row)))
    row[key] = other[key]
    return row


ROW = st.one_of(GOOD_ROW(), MUTATED_ROW(), ANY_ROW)


def _as_source_sends(row):
    """The same row as a source hands it over: fixed-point strings, whole counts as ints."""

    def price(v):
        return None if v is None else str(Decimal(v) / Decimal(10_000))

    def count(v):
        return None if v is None else (v // 100 if v % 100 == 0 else str(Decimal(v) / 100))

    def levels(ls):
        return (
            None
            if ls is None
            else [None if lv is None else [price(lv["price_cc"]), count(lv["qty_hundredths"])] for lv in ls]
        )

    return {
        "ticker": row["ticker"],
        "ts": row["ts"],
        "yes_bid": price(row["yes_bid_cc"]),
        "yes_ask": price(row["yes_ask_cc"]),
        "last": price(row["last_cc"]),
        "volume": count(row["volume_hundredths"]),
        "yes_bids": levels(row["yes_bids"]),
        "no_bids": levels(row["no_bids"]),
    }


@settings(max_examples=150, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=12))
def test_vectorised_check_gives_the_row_checks_verdicts_and_values(rows):
    table = pa.Table.from_pylist(rows, schema=pa.schema([f for f in cat.SNAPSHOTS if f.name != "source"]))
    now = SIM_START_MS + 60_000
    checked = check_batch(table, now)
    quotes = checked.quotes(list(range(len(rows))))
    for i, row in enumerate(rows):
        v = validate_row({"ticker": row["ticker"], "status": "open"}, _as_source_sends(row), now)
        assert bool(checked.valid[i]) == (v.reason is None), (row, v.reason)
        assert (quotes[i] is not None) == bool(checked.plain[i])
        if checked.plain[i]:
            s = v.snapshot
            assert s is not None
            # the Quote handed to the engine beside the row is the row check's, stored forms too
            q = quotes[i]
            assert q == s and (q.yes_bid, q.yes_ask, q.last, q.book_text) == (s.yes_bid, s.yes_ask, s.last, s.book_text)
            # where the row check reads a bid of 0 / an ask of 1 as no order there, so do the values
            quiet = (lambda v, none: None if v == none else v) if QUIET_SIDES else (lambda v, none: v)
            assert (
                s.ticker,
                s.ts,
                cat.to_cc(s.yes_bid),
                cat.to_cc(s.yes_ask),
                cat.to_cc(s.last),
                cat.to_hundredths(s.volume),
            ) == (
                row["ticker"],
                row["ts"],
                quiet(row["yes_bid_cc"], 0),
                quiet(row["yes_ask_cc"], 10_000),
                row["last_cc"],
                row["volume_hundredths"],
            )
            for side in ("yes_bids", "no_bids"):
                assert [(cat.to_cc(lv.price), cat.to_hundredths(lv.qty)) for lv in getattr(s, side)] == [
                    (lv["price_cc"], lv["qty_hundredths"]) for lv in row[side]
                ]
        elif v.reason is not None:
            assert (
                checked.reasons[i]
                == validate_row({"ticker": row["ticker"], "status": "open"}, checked.raw(i), now).reason
            )


def test_plain_rows_are_most_rows_of_a_recorded_catalog(tmp_path):
    root, _ = record_sim(tmp_path, ticks=50)
    t = pq.read_table(cat.files(root, "snapshots")[0])
    checked = check_batch(t, None)
    assert checked.plain.all() and not checked.reasons


@pytest.mark.parametrize("bad", [{"yes_bid_cc": 4200, "yes_ask_cc": 4200}, {"yes_bid_cc": 5000, "yes_ask_cc": 100}])
def test_a_rejected_row_keeps_the_row_checks_reason(bad):
    row = {
        "ts": SIM_START_MS,
        "ticker": "T",
        "last_cc": None,
        "volume_hundredths": 0,
        "yes_bids": [],
        "no_bids": [],
        **bad,
    }
    table = pa.Table.from_pylist([row], schema=pa.schema([f for f in cat.SNAPSHOTS if f.name != "source"]))
    checked = check_batch(table, None)
    assert not checked.valid[0] and not checked.plain[0]
    assert checked.reasons[0].startswith("snapshot") and "crossed" in checked.reasons[0]


def test_a_quote_handed_over_alone_is_taken_as_it_is_and_its_raw_form_made_only_if_rejected():
    # a catalog replay hands a plainly valid row over as its Quote alone (no raw dict per row)
    from kakashi_tui.adapters.source import RawRow
    from kakashi_tui.core.validate import SETTLED_QUOTE
    from tests.conftest import book

    q = book(ticker="T", ts=SIM_START_MS)
    market = {"ticker": "T", "status": "open"}
    v = validate_row(market, None, SIM_START_MS, quote=q)
    assert v.snapshot is q and v.reason is None and v.market is not None
    assert validate_row(market, None, SIM_START_MS, settled={"T"}, quote=q).reason == SETTLED_QUOTE
    assert validate_row(market, None, SIM_START_MS).snapshot is None  # a market row alone
    made = []
    row = RawRow(
        market=market, snapshot=None, payload=None, quote=q, evidence=lambda: made.append(1) or {"ticker": "T"}
    )
    assert made == [] and row.raw_payload() == {"ticker": "T"} and made == [1]
    assert RawRow(market=market, snapshot={"a": 1}, payload={"a": 1}).raw_payload() == {"a": 1}


def test_a_market_paying_half_the_fee_is_not_filtered_out_of_the_replay(tmp_path):
    """The pre-filter's fee floor is a coefficient: a market's own fee_multiplier (0.5) is
    charged 0.07 x 0.5, and a quote whose EV clears only at that fee still reaches the strategy.
    (The floor once took the multiplier itself for a coefficient: min(0.07, 0.5) = 0.07.)"""
    T = SIM_START_MS
    w = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"))
    w.add_market(Market(ticker="KXHALF-A", series="KXHALF", status="open", fee_multiplier=Decimal("0.5")), T)
    w.add_estimate(Estimate(ticker="KXHALF-A", p_hat=Decimal("0.54"), source="beliefs-file", ts=T), T)
    for k, (bid, no_bid) in enumerate((("0.45", "0.50"), ("0.55", "0.40"), ("0.55", "0.40"))):
        # YES ask 0.50, then 0.60: EV at 0.50 is 0.54 - 0.50 - 0.0088 >= 0.03; less 0.0175 it would not be
        w.add_snapshot(book("KXHALF-A", T + (k + 1) * 30_000, yes=((bid, 100),), no=((no_bid, 100),)), "kalshi")
    w.close()
    run(tmp_path / "rows.db", tmp_path / "catalog", KakashiConfig(), columnar=False)
    run(tmp_path / "col.db", tmp_path / "catalog", KakashiConfig())
    rows, col = tables(tmp_path / "rows.db"), tables(tmp_path / "col.db")
    assert len(rows["decisions"]) == 1 and rows["fills"]
    assert col == rows


def test_a_market_with_a_resting_order_goes_through_the_per_row_code_until_the_order_is_done(tmp_path):
    """Post mode (issue #23 item 10). A's belief 0.60 on bid 0.40 / ask 0.45: posted YES @0.41
    at the first tick. At the second, A's book is one-sided (no ask): no post can rest on it, so
    the pre-filter alone would leave the row on the fast path; but A has a live order, so the row
    goes to the per-row code, where re-pricing asks the post to cancel (no post wanted now). The
    third tick's book is the first's again: the order is done, the market decided afresh, a new
    post placed. B, with no belief, stays on the fast path but its last row."""
    T = SIM_START_MS
    w = CatalogWriter(tmp_path / "catalog", roll_s=float("inf"))
    for t in ("KXA-1", "KXB-1"):
        w.add_market(Market(ticker=t, series="KX", status="open", close_ts=T + 86_400_000), T)
    w.add_estimate(Estimate(ticker="KXA-1", p_hat=Decimal("0.60"), source="beliefs-file", ts=T), T)
    two_sided = {"yes": (("0.40", 10),), "no": (("0.55", 10),)}
    for k, shape in enumerate((two_sided, {"yes": (("0.40", 10),), "no": ()}, two_sided, two_sided), 1):
        for t in ("KXA-1", "KXB-1"):
            w.add_snapshot(book(t, T + k * 60_000, **shape), "kalshi")
    w.close()
    cfg = KakashiConfig(strategy=StrategySection(mode="post"))
    run(tmp_path / "rows.db", tmp_path / "catalog", cfg, columnar=False)
    *_, st = run(tmp_path / "col.db", tmp_path / "catalog", cfg)
    rows, col = tables(tmp_path / "rows.db"), tables(tmp_path / "col.db")
    assert [(o[0], o[2], o[4]) for o in rows["orders"]] == [(1, "KXA-1", 4100), (2, "KXA-1", 4100)]
    assert (1, T + 2 * 60_000, "cancel_requested", "re-price: no post wanted now", None) in rows["order_events"]
    assert col == rows
    assert st.rows_decided < st.snapshots  # (B's rows but its last stayed on the fast path)
    alone = CatalogSource(tmp_path / "catalog", mode="post")  # no engine: nothing held
    sent = []
    while alone.has_next():
        sent += [(r.market["ticker"], r.quote.ts) for r in alone.fetch().rows if r.quote is not None]
    assert ("KXA-1", T + 60_000) in sent and ("KXA-1", T + 2 * 60_000) not in sent  # (the order sends it)
