"""The band (issue #23, item 7): the run's paper orders under the three queue models, read from
the store: printed by ``kakashi replay`` after its summary, and the post-mortem's "Queue models".

The run traded by one model (``orders.queue_model``: its fills are the ledger's); the engine kept
the same orders under the other two as shadows (core/shadows.py, ``shadow_events``). A taker
order (``ioc``) in a market with no resting order has no shadows: it fills the same under every
model, and its fills count alike in each row. Per model:

- **orders**: the orders decided in the period (the same orders in every row); **fills**: fill
  events; **fill rate**: contracts filled over contracts ordered; **contracts** filled;
- **PnL**: what the model's fills settle to: each order's contracts at their market's settlement
  value (``outcomes``; a scalar's value for YES, one minus it for NO, floored to the centicent as
  the ledger pays) less what they cost and their fee. A market not settled by the data's end is
  marked at its last mid then (the latest stored quote at or before the last tick; the NO side
  one minus the YES mid), and one with no two-sided quote at $0: both are named. (Not the
  ledger's realised PnL: no flatten sale is counted, for no shadow was ever sold.)
- **95% CI**: of that PnL, resampling events (the orders of one event together), as every
  interval of the report: the order count times the per-order mean's interval
  (``scoring.clustered_mean``, 2,000 resamples, the report's seed).

Rows are always shown front, prob, risk_averse. Order by order the fills are ordered that way
(core/queue.py's property); several orders of one market share prints and the book's crossing
size, so in sum it can fail: then it is said, and the rows are left as they are.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from kakashi_tui.adapters import queries
from kakashi_tui.core.money import floor_cc, fmt_count, hundredths_to_count
from kakashi_tui.frontends.fmt import fmt_signed
from kakashi_tui.frontends.report import scoring as sc

#: The band's rows, most fills first (the order the models' fills keep, order by order).
SHOWN = ("front", "prob", "risk_averse")

L3 = (
    "Replayed maker PnL without order-by-order (L3) data is an estimate with an optimistic edge: the data "
    "has the book by price level and the trade prints, not the orders in the queue, so where a resting order "
    "stood is modelled, never seen, and no paper order ever took liquidity from anyone or moved the market."
)


@dataclass(frozen=True)
class ModelRow:
    model: str
    traded: bool  # the run traded by it: its fills are the ledger's
    orders: int
    fills: int
    ordered_hundredths: int
    filled_hundredths: int
    pnl_cc: int
    ci: tuple[float, float] | None  # the PnL's 95% interval, in centicents (None: fewer than 2 events)

    @property
    def fill_rate(self) -> float | None:
        return self.filled_hundredths / self.ordered_hundredths if self.ordered_hundredths else None


@dataclass(frozen=True)
class Band:
    rows: tuple[ModelRow, ...]  # in SHOWN's order, never re-sorted
    takers: int  # taker orders with no shadows: the same fills under every model
    resting: int  # resting orders (gtc, gtd)
    unshadowed: int  # resting orders no shadow holds (counted at the run's own fills in every row)
    marked: tuple[str, ...]  # markets not settled, marked at their last mid
    no_mid: tuple[str, ...]  # markets not settled with no two-sided quote: marked at $0

    @property
    def holds(self) -> bool:
        """front >= prob >= risk_averse in contracts filled."""
        f = [r.filled_hundredths for r in self.rows]
        return all(a >= b for a, b in zip(f, f[1:]))


def _payout_per(result: str, value: str | None, side: str) -> Decimal | None:
    """Dollars a contract of ``side`` receives at a booked result (None: not known)."""
    if result in ("yes", "no"):
        return Decimal(1 if result == side else 0)
    if result == "scalar" and value is not None:
        v = Decimal(value)
        return v if side == "yes" else 1 - v
    return None


def gather_band(
    con: sqlite3.Connection, since: int | None = None, until: int | None = None, data_end_ms: int | None = None
) -> Band | None:
    """The band of the orders decided in [since, until] (None: no order)."""
    orders = [
        o for o in queries.band_orders(con) if (since is None or o[1] >= since) and (until is None or o[1] <= until)
    ]
    if not orders:
        return None
    rows, shadowed = queries.band_fills(con)
    got: dict[tuple[int, str], list[tuple[int, int, int]]] = defaultdict(list)
    for oid, model, h, value, fee in rows:
        got[(oid, model)].append((h, value, fee))
    outcomes = queries.band_outcomes(con)
    mids: dict[str, int | None] = {}  # an unsettled market's YES mid x 2 in centicents (None: no mid)

    def value_cc(ticker: str, side: str, h: int) -> int:
        out = outcomes.get(ticker)
        per = None if out is None else _payout_per(out[0], out[1], side)
        if per is not None:
            return floor_cc(per * hundredths_to_count(h))
        if ticker not in mids:
            q = None if data_end_ms is None else queries.quote_as_of(con, ticker, data_end_ms)
            mids[ticker] = None if q is None or q[1] is None or q[2] is None else q[1] + q[2]
        mid2 = mids[ticker]
        if mid2 is None:
            return 0
        return h * (mid2 if side == "yes" else 20_000 - mid2) // 200

    per_model: dict[str, list[tuple[int, int, int]]] = {m: [] for m in SHOWN}  # (fills, hundredths, pnl) by order
    takers = resting = unshadowed = 0
    for oid, _ts, ticker, side, tif, _qty, traded_by, _event in orders:
        alone = not any((oid, m) in shadowed for m in SHOWN)
        if tif == "ioc":
            takers += alone
        else:
            resting += 1
            unshadowed += alone
        for m in SHOWN:
            mine = got.get((oid, m if m == traded_by or (oid, m) in shadowed else traded_by), [])
            h = sum(f[0] for f in mine)
            cost = sum(f[1] + f[2] for f in mine)
            per_model[m].append((len(mine), h, (value_cc(ticker, side, h) if h else 0) - cost))
    events = sc.cluster_index([o[7] or o[2] for o in orders])
    ordered = sum(o[5] for o in orders)
    traded = {o[6] for o in orders}
    out = []
    for m in SHOWN:
        pnls = [each[2] for each in per_model[m]]
        iv = sc.clustered_mean(pnls, events)
        n = len(pnls)
        ci = None if iv.lo is None or iv.hi is None else (iv.lo * n, iv.hi * n)
        fills = sum(each[0] for each in per_model[m])
        filled = sum(each[1] for each in per_model[m])
        out.append(ModelRow(m, m in traded, n, fills, ordered, filled, sum(pnls), ci))
    unsettled = sorted(mids)
    return Band(
        tuple(out),
        takers,
        resting,
        unshadowed,
        tuple(t for t in unsettled if mids[t] is not None),
        tuple(t for t in unsettled if mids[t] is None),
    )


# -- the words -------------------------------------------------------------------------------
def _cells(r: ModelRow) -> list[str]:
    rate = r.fill_rate
    ci = "n/a (fewer than 2 events)"
    if r.ci is not None:
        ci = f"{fmt_signed(round(r.ci[0]))} to {fmt_signed(round(r.ci[1]))}"
    return [
        f"{r.model} (traded)" if r.traded else r.model,
        str(r.orders),
        str(r.fills),
        "—" if rate is None else f"{rate:.1%}",
        fmt_count(hundredths_to_count(r.filled_hundredths)),
        fmt_signed(r.pnl_cc),
        ci,
    ]


HEAD = ["model", "orders", "fills", "fill rate", "contracts filled", "PnL", "95% CI (by event)"]


def _names(tickers: tuple[str, ...], most: int = 5) -> str:
    more = len(tickers) - most
    return ", ".join(tickers[:most]) + (f" and {more} more" if more > 0 else "")


def notes(b: Band) -> list[str]:
    """What the rows mean, the order's flag when it fails, and the L3 sentence."""
    traded = [r.model for r in b.rows if r.traded]
    out = [
        f"The same {b.rows[0].orders} order(s) under each queue model. The run's decisions, ledger and guardrails "
        f"used {' and '.join(traded)} only; the other rows are its orders' fills under the other models, never booked."
    ]
    if not b.holds:
        filled = ", ".join(f"{r.model} {fmt_count(hundredths_to_count(r.filled_hundredths))}" for r in b.rows)
        out.append(
            f"**The order front >= prob >= risk_averse does not hold here** (contracts filled: {filled}); shown as "
            "it is, not re-sorted. It holds order by order; orders of one market share a print's size and the "
            "book's crossing size, which can break it in sum."
        )
    if b.resting == 0:
        out.append(
            "Every order was a taker's (ioc): a taker fills against the book at its activation, the same under every "
            "queue model, so the three rows are equal. The models differ only for resting orders."
        )
    elif b.takers:
        out.append(
            f"{b.takers} taker order(s) (ioc) in markets with no resting order fill the same under every model: "
            "counted alike in each row."
        )
    if b.unshadowed:
        out.append(
            f"{b.unshadowed} resting order(s) have no shadow record (rejected as they were placed, or placed "
            "before the band was kept): counted at the run's own fills in every row."
        )
    marks = "PnL: each model's fills at their market's settlement value, less cost and fee"
    if b.marked or b.no_mid:
        marks += "; markets not settled by the data's end are marked at their last mid then"
        if b.marked:
            marks += f" ({_names(b.marked)})"
        if b.no_mid:
            marks += f", and at $0 with no two-sided quote ({_names(b.no_mid)})"
    out.append(marks + ". The 95% CI resamples events.")
    out.append(L3)
    return out


def table_lines(b: Band) -> list[str]:
    """The band as an aligned text table, for ``kakashi replay``'s output."""
    rows = [HEAD] + [_cells(r) for r in b.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD))]
    out = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:-1], widths[1:-1])] + [r[-1]]
        out.append("  ".join(cells).rstrip())
    return out


def replay_lines(con: sqlite3.Connection) -> list[str]:
    """What ``kakashi replay`` prints after its summary: the band and its notes."""
    b = gather_band(con, data_end_ms=queries.last_tick_ts(con))
    if b is None:
        return ["queue models: no paper order was placed, so there is no band to show"]
    return ["queue models (the band):", *table_lines(b), *(n.replace("**", "") for n in notes(b))]


def section(b: Band | None) -> list[str]:
    """The post-mortem's "Queue models" section (markdown)."""
    if b is None:
        return ["No paper order in this period: no band.", "", L3]
    out = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    out += ["| " + " | ".join(_cells(r)) + " |" for r in b.rows]
    for n in notes(b):
        out += ["", n]
    return out
