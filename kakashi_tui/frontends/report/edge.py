"""The post-mortem's scoring of the edge: p̂ against the market's price (CORP decomposition, skill
with an interval, Murphy curve) and closing-line value, every interval resampling events.

Forecasts are scored per settled (binary) market at its **first decision**: the first time its p̂
cleared the edge threshold, whether or not the risk gate let it trade (the gate's caps are not
the forecast's doing, and the refused ones are many more settled outcomes to score on), against
the market's mid then (the last two-sided quote at or before it). Closing-line value is per
**entry**: a buy fill on a market that has stopped trading. Methods and papers:
``scoring.py``. numpy and scikit-learn load only here, when a report is written.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.closing import Candles, closing_line
from kakashi_tui.core.markout import market_stop
from kakashi_tui.frontends.report import scoring as sc

MURPHY_THETAS = tuple(round(0.1 * i, 1) for i in range(1, 10))
BUCKETS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))


@dataclass(frozen=True)
class Entry:
    fill_id: int
    ts: int
    ticker: str
    event: str  # the market's event_ticker (the ticker itself when the market row has none)
    side: str  # "yes" | "no"
    contracts: float
    price: float  # what one contract of the side cost, dollars
    fee: float  # the entry's fee per contract, dollars
    p_hat: float | None  # P(YES) the decision held
    market: float | None  # the YES mid at the decision
    outcome: int | None  # 1 YES, 0 NO; None unsettled or scalar
    close: float | None  # the YES closing mid (None: the market still trades, or no closing price)
    close_source: str = ""
    pnl: float | None = None  # realised PnL per contract of this (ticker, side)'s closes, dollars

    @property
    def clv(self) -> float | None:
        return None if self.close is None else sc.clv(self.side, self.price, self.close)

    @property
    def clv_fees(self) -> float | None:
        return None if self.close is None else sc.clv(self.side, self.price, self.close, self.fee)


def _mid(bid: float | None, ask: float | None) -> float | None:
    return None if bid is None or ask is None else (bid + ask) / 2


@dataclass(frozen=True)
class Forecast:
    ticker: str
    event: str
    p_hat: float
    market: float  # the YES mid at the decision
    outcome: int  # 1 YES, 0 NO


def gather_forecasts(
    con: sqlite3.Connection, since: int | None, until: int | None, events_of: dict[str, str]
) -> list[Forecast]:
    """Each settled binary market's first decision in the period, with the market's mid then."""
    outcomes = {t: r for t, r, ts in queries.outcome_rows(con) if until is None or ts <= until}
    out = []
    for _id, t, ts, p_hat in queries.first_decisions(con):
        y = {"yes": 1, "no": 0}.get(outcomes.get(t, ""))
        if y is None or not ((since is None or ts >= since) and (until is None or ts <= until)):
            continue
        q = queries.quote_at(con, t, ts)
        if q is None or (m := _mid(q[0], q[1])) is None:
            continue
        out.append(Forecast(t, events_of.get(t) or t, float(p_hat), m, y))
    return out


def gather_entries(
    con: sqlite3.Connection,
    since: int | None,
    until: int | None,
    now_ms: int | None,
    closes: dict[tuple[str, str], tuple[int, Any]],
    catalog: Path | None = None,
) -> tuple[list[Entry], str]:
    """The period's entries, each with its decision's p̂, the market's mid then, its outcome and
    its closing line; and a note when the catalog could not be read. ``closes`` is the realised
    (pnl_cc, contracts) per (ticker, side)."""
    outcomes = {t: (r, ts) for t, r, ts in queries.outcome_rows(con)}
    candles = Candles(catalog)
    out: list[Entry] = []
    for fid, ts, t, side, n_hundredths, value_cc, fee_cc, p_hat, d_ts, event, close_ts in queries.entry_rows(con):
        if not ((since is None or ts >= since) and (until is None or ts <= until)) or n_hundredths <= 0:
            continue
        n = n_hundredths / 100
        q = queries.quote_at(con, t, d_ts if d_ts is not None else ts)
        market = _mid(q[0], q[1]) if q is not None else None
        res = outcomes.get(t)
        outcome = {"yes": 1, "no": 0}.get(res[0]) if res else None
        stop = market_stop(close_ts, res[1] if res else None, now_ms)
        close: float | None = None
        source = ""
        if stop is not None and (c := closing_line(con, t, stop, candles)) is not None:
            close, source = c[0] / 20_000, c[1]
        pnl = None
        if (k := closes.get((t, side))) is not None and float(k[1]) > 0:
            pnl = k[0] / 10_000 / float(k[1])
        out.append(
            Entry(
                fill_id=fid,
                ts=ts,
                ticker=t,
                event=event or t,
                side=side,
                contracts=n,
                price=value_cc / 10_000 / n,
                fee=fee_cc / 10_000 / n,
                p_hat=p_hat,
                market=market,
                outcome=outcome,
                close=close,
                close_source=source,
                pnl=pnl,
            )
        )
    return out, candles.note


# -- the figures ----------------------------------------------------------------------------
@dataclass
class Scored:
    """p̂ and the market's mid at decision, on the settled entries."""

    n: int
    events: int
    p: np.ndarray
    m: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    decomp: dict[tuple[str, str], sc.Decomposition] = field(default_factory=dict)
    skill: dict[str, sc.Interval] = field(default_factory=dict)


def score(forecasts: Iterable[Forecast]) -> Scored | None:
    rows = list(forecasts)
    if not rows:
        return None
    p = np.array([e.p_hat for e in rows], float)
    m = np.array([e.market for e in rows], float)
    y = np.array([e.outcome for e in rows], float)
    groups = sc.cluster_index([e.event for e in rows])
    s = Scored(len(rows), int(groups.max()) + 1, p, m, y, groups)
    for kind in sc.SCORES:
        for who, x in (("p̂", p), ("market", m)):
            s.decomp[(kind, who)] = sc.decompose(x, y, kind)
        f = sc.SCORES[kind]
        xp, xm = (np.clip(p, sc.EPS, 1 - sc.EPS), np.clip(m, sc.EPS, 1 - sc.EPS)) if kind == "log" else (p, m)
        s.skill[kind] = sc.clustered_skill(f(xp, y), f(xm, y), groups)
    return s


@dataclass
class LineValue:
    """Closing-line value of the entries whose market stopped trading."""

    entries: list[Entry]
    plain: sc.Interval
    fees: sc.Interval
    sources: Counter
    missing: int  # entries on stopped markets with no closing price anywhere


def line_value(entries: list[Entry]) -> LineValue | None:
    rows = [e for e in entries if e.close is not None]
    missing = sum(1 for e in entries if e.close is None and e.outcome is not None)
    if not rows:
        return None
    g = sc.cluster_index([e.event for e in rows])
    return LineValue(
        rows,
        sc.clustered_mean([e.clv for e in rows], g),  # type: ignore[misc]
        sc.clustered_mean([e.clv_fees for e in rows], g),  # type: ignore[misc]
        Counter(e.close_source for e in rows),
        missing,
    )


# -- the words ------------------------------------------------------------------------------
def _cts(x: float) -> str:
    return f"{x * 100:+.2f}¢"


def _ci(iv: sc.Interval, fmt=lambda v: f"{v:+.3f}") -> str:
    if iv.lo is None or iv.hi is None:
        return f"n/a ({iv.events} event{'s' if iv.events != 1 else ''}: an interval needs two)"
    return f"{fmt(iv.lo)} to {fmt(iv.hi)}"


#: Past this many times the sample, "trades needed" is not a number worth printing: near a zero
#: estimate the projection explodes (millions), and says only that no edge shows at this size.
NEED_CAP = 100


def need_words(iv: sc.Interval, what: str, unit: str = "settled trades", fmt=lambda v: f"{v:+.4f}") -> str:
    """How many more settled trades (or markets) the effect needs before its 95% lower bound clears
    zero. Written to follow a colon ("Brier skill: its 95% interval ..."), so it starts in lower case."""
    if iv.lo is None or iv.hi is None:
        return f"no interval on {iv.events} event(s), so no claim of {what} either way."
    more = sc.more_needed(iv)
    if more == 0:
        return f"its 95% lower bound is above zero: {what} shown on these {iv.n:,} {unit.split()[-1]}."
    if more is None:
        return (
            f"its estimate, {fmt(iv.estimate)}, is not above zero, so no number of further {unit} at this effect "
            f"would lift the 95% lower bound above zero: no {what} shown."
        )
    if more > NEED_CAP * iv.n:
        return (
            f"its 95% interval includes zero: no {what} shown yet. At the effect observed ({fmt(iv.estimate)}, "
            f"close to zero against its spread) the 95% lower bound would clear zero only after more than "
            f"{NEED_CAP}x the sample (over {NEED_CAP * iv.n:,} more {unit}): no edge visible at this size."
        )
    return (
        f"its 95% interval includes zero: no {what} shown yet. At the effect and spread observed, about {more:,} "
        f"more {unit} ({iv.n + more:,} in all) would put the 95% lower bound above zero."
    )


def score_section(s: Scored | None) -> list[str]:
    if s is None:
        return ["No settled binary market with a decision and a two-sided quote at it in this period."]
    out = [
        f"Each settled market is scored at its first decision (the first time p̂ cleared the edge threshold, "
        f"traded or refused by the gate) twice: p̂, and the market's mid then (the last two-sided quote stored at "
        f"or before it); {s.n} markets in {s.events} event(s). Lower scores are better; score = miscalibration − "
        "discrimination + uncertainty (CORP, see Methods).",
        "",
        "| score | forecast | mean score | miscalibration | discrimination | uncertainty |",
        "|---|---|---|---|---|---|",
    ]
    for kind in sc.SCORES:
        for who in ("p̂", "market"):
            d = s.decomp[(kind, who)]
            out.append(f"| {kind} | {who} | {d.score:.4f} | {d.mcb:.4f} | {d.dsc:.4f} | {d.unc:.4f} |")
    out += [
        "",
        "| skill against the market (1 − score p̂ / score market) | estimate | 95% CI (by event) |",
        "|---|---|---|",
    ]
    for kind, iv in s.skill.items():
        out.append(f"| {kind} | {iv.estimate:+.4f} | {_ci(iv, lambda v: f'{v:+.4f}')} |")
    b = s.skill["Brier"]
    out += [
        "",
        "Skill above zero means p̂ scored better than the market. Brier skill: "
        + need_words(b, "skill", "settled markets"),
    ]
    dp, dm = s.decomp[("Brier", "p̂")], s.decomp[("Brier", "market")]
    worse = []
    if dp.mcb > dm.mcb:
        worse.append(f"worse calibrated (miscalibration {dp.mcb:.4f} against the market's {dm.mcb:.4f})")
    if dp.dsc < dm.dsc:
        worse.append(f"less sharp (discrimination {dp.dsc:.4f} against the market's {dm.dsc:.4f})")
    out.append(
        "On the Brier score p̂ is "
        + (" and ".join(worse) if worse else "no worse calibrated and no less sharp")
        + " than the market's price. (The decomposition's parts carry no interval; the skill's is above.)"
    )
    return out


def clv_section(lv: LineValue | None) -> list[str]:
    if lv is None:
        return ["No entry on a market that stopped trading in this period: no closing line to compare with."]
    src = ", ".join(f"{n} from {k}" for k, n in lv.sources.most_common())
    out = [
        "Closing-line value (CLV) per contract: the market's last mid before it stopped trading, less the price "
        "paid (a NO entry: one minus the mid, less its price); after fees: less the entry's fee per contract too. "
        "Above zero: you bought below where the market closed.",
        "",
        "| entries | events | mean CLV | 95% CI (by event) | mean CLV after fees | 95% CI (by event) |",
        "|---|---|---|---|---|---|",
        f"| {lv.plain.n} | {lv.plain.events} | {_cts(lv.plain.estimate)} | {_ci(lv.plain, _cts)} | "
        f"{_cts(lv.fees.estimate)} | {_ci(lv.fees, _cts)} |",
        "",
        f"Closing prices: {src}"
        + (
            f"; {lv.missing} settled entr{'y' if lv.missing == 1 else 'ies'} had none and are left out"
            if lv.missing
            else ""
        )
        + ". A closing mid is a quote, exact to the centicent; its error as a fair price is the closing spread.",
        "",
    ]
    f = lv.fees
    if f.hi is not None and f.hi < 0:
        out.append(
            f"**CLV after spread and fees is negative** (95% upper bound {_cts(f.hi)}): the entries paid more than "
            "the price the market closed at. That is what a forecaster without an edge looks like."
        )
    elif f.lo is not None and f.lo > 0:
        out.append(f"CLV after fees is positive (95% lower bound {_cts(f.lo)}): the entries beat the closing line.")
    else:
        out.append(f"CLV after fees: {need_words(f, 'positive closing-line value', fmt=_cts)}")
    out += ["", "| p̂ (YES) | entries | mean CLV | mean CLV after fees |", "|---|---|---|---|"]
    for lo, hi in BUCKETS:
        b = [e for e in lv.entries if e.p_hat is not None and lo <= e.p_hat < hi + (hi == 1.0)]
        if b:
            out.append(
                f"| {lo:.1f}–{hi:.1f} | {len(b)} | {_cts(float(np.mean([e.clv for e in b])))} | "
                f"{_cts(float(np.mean([e.clv_fees for e in b])))} |"
            )
    out.append("")
    out.append("(Per bucket: the mean only; the buckets are small and their events overlap.)")
    return out


def murphy_section(s: Scored | None) -> list[str]:
    if s is None:
        return ["Nothing settled to draw it from."]
    th = np.array(MURPHY_THETAS)
    pp, pm = sc.murphy_pnl(s.p, s.y, th), sc.murphy_pnl(s.m, s.y, th)
    out = [
        "Mean P&L per settled market (the forecasts scored above), in cents per contract, of buying one YES at "
        "price θ whenever the forecast is above θ (Ehm, Gneiting, Jordan and Krüger 2016: the elementary score "
        "at θ, up to a term no forecast can move). Higher is better; where p̂'s row beats the market's, "
        "p̂ would have traded better at that price.",
        "",
        "| θ | " + " | ".join(f"{t:.1f}" for t in th) + " |",
        "|---|" + "---|" * len(th),
        "| p̂ | " + " | ".join(f"{v * 100:+.1f}" for v in pp) + " |",
        "| market | " + " | ".join(f"{v * 100:+.1f}" for v in pm) + " |",
        "",
        "(Means only; the skill above carries the interval.)",
    ]
    return out


def methods_section() -> list[str]:
    return [
        f"- Intervals: percentile bootstrap, {sc.RESAMPLES:,} resamples, seed {sc.SEED} (repeatable). Each resample "
        "draws whole events (Kalshi's `event_ticker`), with replacement, as many as there are: brackets of one "
        "event are mutually exclusive, so their outcomes are not independent and are never split. A statistic is "
        "a ratio of sums over the events drawn.",
        "- How many more trades: the interval is read as normal (half-width / 1.96 = standard error), and shrinks "
        "as 1/√n at the observed effect and spread; it assumes later trades spread over events as these did.",
        "- Reliability: CORP (Dimitriadis, Gneiting and Jordan, *Stable reliability diagrams for probabilistic "
        "classifiers*, PNAS 118(8), 2021): the recalibrated forecast is the isotonic (PAV) regression of the "
        "outcomes on the forecast (scikit-learn's `IsotonicRegression`); score = miscalibration − discrimination "
        "+ uncertainty against the climatology (the share that settled YES). Consistency bands (charts): "
        f"{sc.BAND_RESAMPLES} redraws of the outcomes as Bernoulli(forecast), recalibrated, 5%–95% pointwise, "
        f"seed {sc.SEED}. Log score: natural log, forecasts held within [{sc.EPS}, 1 − {sc.EPS}].",
        "- Murphy curve: Ehm, Gneiting, Jordan and Krüger, *Of quantiles and expectiles: consistent scoring "
        "functions, Choquet representations and forecast rankings*, JRSS-B 78(3), 2016.",
        "- Closing prices, in order: the database's recorded quotes (the last two-sided quote at or before the "
        "market's close or its settlement, whichever came first), else the catalog's candlesticks from `kakashi "
        "catalog backfill` (the last period's bid/ask mid, else its last trade).",
    ]
