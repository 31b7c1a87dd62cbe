"""The post-mortem's markouts (issue #23, item 6): for every fill of the period, the market's mid
at the fill, 1, 5 and 30 minutes after it and at its close, against the fill's price; by role
(maker, taker) and horizon, the mean with a 95% interval that resamples events (``scoring.py``'s
bootstrap, as every interval of the report), and a line that says what it means.

The arithmetic and its sign are ``core/markout.py``'s; the reads are ``adapters/queries.py``'s
(``markout_fill_rows``, ``quote_as_of``: a walk back along the snapshots' time index from each
read time); "close" is ``adapters/closing.py``'s ``closing_line``, the closing-line value's own. Nothing is stored:
a markout is read from the quotes whenever a report is written, so a horizon still pending in one
report is filled in by a later one.

A horizon shorter than the data's sampling interval measures nothing: with no tick between the fill
and the read time (the simulator's step is 10 minutes by default; a replay's ticks are the
recording's), the quote read is the one the fill traded on. Such a fill's horizon is *blind*
(``FillMarkouts.blind``); a horizon blind for every fill says "= fill-time mid: no quote between" in
the table instead of a figure, and the drift after the fill never uses a blind one.
"""

from __future__ import annotations

import sqlite3
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.closing import Candles, closing_line
from kakashi_tui.core import markout as mk
from kakashi_tui.frontends.fmt import fmt_utc
from kakashi_tui.frontends.report import scoring as sc

#: Why a horizon has no markout.
PENDING = "pending"  # its read time is past the data's end: not known yet, never zero
NO_MID = "no mid"  # the quote then was one-sided or empty, none was stored, or no closing price


@dataclass(frozen=True)
class FillMarkouts:
    """One fill's markouts, per contract in centicents, by horizon label (``core.markout.LABELS``)."""

    fill_id: int
    ts: int
    ticker: str
    event: str  # the market's event_ticker (the ticker itself when the market row has none)
    side: str
    action: str  # buy | sell
    role: str  # maker | taker
    gross: dict[str, float] = field(default_factory=dict)
    net: dict[str, float] = field(default_factory=dict)  # less the fee per contract
    missing: dict[str, str] = field(default_factory=dict)  # label -> PENDING | NO_MID
    blind: set[str] = field(default_factory=set)  # labels read off the fill's own quote: no tick between


#: A horizon no fill saw a newer quote at: not a measurement, said so in place of a figure.
BLIND_WORDS = "= fill-time mid: no quote between"


def tick_gap_ms(tick_ts: Sequence[int]) -> int | None:
    """The data's sampling interval: the median time between consecutive ticks (None under two)."""
    gaps = [b - a for a, b in zip(tick_ts, tick_ts[1:]) if b > a]
    return int(statistics.median(gaps)) if gaps else None


def gather_markouts(
    con: sqlite3.Connection,
    since: int | None,
    until: int | None,
    data_end_ms: int | None,
    catalog: Path | None = None,
    tick_ts: Sequence[int] | None = None,
) -> list[FillMarkouts]:
    """The period's fills with their markouts. ``data_end_ms`` is the last tick's time: a read
    time past it is pending, and a market is closed only once it stopped trading by then.
    ``tick_ts``: every tick's time, in order (read from ``con`` when not given): a horizon with no
    tick after the fill up to its read time, whose quote is the fill's own, is blind."""
    candles = Candles(catalog)
    ticks = [t for t, _eq, _cash in queries.tick_rows(con)] if tick_ts is None else list(tick_ts)
    out: list[FillMarkouts] = []
    for row in queries.markout_fill_rows(con):
        fid, ts, t, side, action, n_hundredths, value_cc, fee_cc, role, event, close_ts, settled_ts = row
        if not ((since is None or ts >= since) and (until is None or ts <= until)) or n_hundredths <= 0:
            continue
        fm = FillMarkouts(fid, ts, t, event or t, side, action, role)
        stop = mk.market_stop(close_ts, settled_ts, data_end_ms)
        mids: dict[str, int | str] = {}
        first: int | None = None  # the stored time of the quote the fill traded on
        nxt = bisect_right(ticks, ts)
        next_tick = ticks[nxt] if nxt < len(ticks) else None  # the first tick after the fill
        for label, horizon in mk.HORIZONS:
            at = mk.read_at(ts, horizon, stop, data_end_ms)
            if at is None:
                mids[label] = PENDING
                continue
            q = queries.quote_as_of(con, t, at)
            if horizon == 0:
                first = None if q is None else q[0]
            elif q is not None and q[0] == first and (next_tick is None or next_tick > at):
                fm.blind.add(label)
            mids[label] = NO_MID if q is None or q[1] is None or q[2] is None else q[1] + q[2]
        if stop is None:
            mids[mk.CLOSE] = PENDING
        else:
            c = closing_line(con, t, stop, candles)
            mids[mk.CLOSE] = NO_MID if c is None else c[0]
        for label, mid2 in mids.items():
            if isinstance(mid2, str):
                fm.missing[label] = mid2
                continue
            gross, net = mk.markout_cc(side, action, n_hundredths, value_cc, fee_cc, mid2)
            fm.gross[label], fm.net[label] = float(gross), float(net)
        out.append(fm)
    return out


# -- the figures ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One role's markouts at one horizon: the fills it is known for, and the rest counted."""

    label: str
    plain: sc.Interval | None  # None: no fill has it
    net: sc.Interval | None
    pending: int
    no_mid: int
    blind: int = 0  # of the fills it is known for, those that read the fill's own quote

    @property
    def all_blind(self) -> bool:
        """No fill saw a newer quote by this horizon: its figure is the fill's, not a measurement."""
        return self.plain is not None and self.blind == self.plain.n > 0


@dataclass(frozen=True)
class Drift:
    """How the mid moved after the fill, by a horizon: each fill's markout there less its markout
    at the fill (the spread it crossed or earned taken out), over the fills that have both."""

    label: str
    move: sc.Interval
    at_fill: float  # the same fills' mean markout at the fill (the half-spread, signed)


@dataclass(frozen=True)
class RoleMarkouts:
    role: str
    fills: int
    cells: tuple[Cell, ...]
    drift: Drift | None  # at the last horizon whose move has an interval (None: none has)


def _interval(rows: list[FillMarkouts], values: list[float]) -> sc.Interval | None:
    if not rows:
        return None
    return sc.clustered_mean(values, sc.cluster_index([r.event for r in rows]))


def by_role(fills: list[FillMarkouts]) -> list[RoleMarkouts]:
    """Each role that has fills (maker first), its markouts by horizon and the mid's move after."""
    out = []
    for role in (*mk.ROLES, *sorted({f.role for f in fills} - set(mk.ROLES))):
        mine = [f for f in fills if f.role == role]
        if not mine:
            continue
        cells = []
        for label in mk.LABELS:
            known = [f for f in mine if label in f.gross]
            cells.append(
                Cell(
                    label,
                    _interval(known, [f.gross[label] for f in known]),
                    _interval(known, [f.net[label] for f in known]),
                    sum(1 for f in mine if f.missing.get(label) == PENDING),
                    sum(1 for f in mine if f.missing.get(label) == NO_MID),
                    sum(1 for f in known if label in f.blind),
                )
            )
        drift = None
        at_fill = mk.HORIZONS[0][0]
        for label in reversed(mk.LABELS[1:]):
            both = [f for f in mine if label in f.gross and at_fill in f.gross and label not in f.blind]
            move = _interval(both, [f.gross[label] - f.gross[at_fill] for f in both])
            if move is not None and move.lo is not None:
                drift = Drift(label, move, sum(f.gross[at_fill] for f in both) / len(both))
                break
        out.append(RoleMarkouts(role, len(mine), tuple(cells), drift))
    return out


# -- the words ------------------------------------------------------------------------------
def _c(cc: float) -> str:
    """Centicents per contract as signed cents to the centicent: ``+1.25¢``."""
    return f"{cc / 100:+.2f}¢"


def _ci(iv: sc.Interval | None) -> str:
    if iv is None:
        return "—"
    if iv.lo is None or iv.hi is None:
        return "n/a (one event)"
    return f"{_c(iv.lo)} to {_c(iv.hi)}"


def _mean(iv: sc.Interval | None) -> str:
    return "—" if iv is None else _c(iv.estimate)


def _by(label: str) -> str:
    """``close`` -> "by the close", ``30 min`` -> "30 min after the fill"."""
    return "by the close" if label == mk.CLOSE else f"{label} after the fill"


def _at_fill_words(role: str, at_fill: float) -> str:
    """What the markout at the fill is, by role: a taker crosses the spread (its markout there is
    minus the half-spread, or worse where it walked the book); a maker's resting bid is below the
    mid, so it earns the half-spread, unless the market came through its price (a cross or a print
    through it): then the mid was already below its price when it filled."""
    said = f"their markout at the fill, {_c(at_fill)},"
    if role == "maker":
        if at_fill >= 0:
            return f"{said} is the half-spread earned"
        return f"{said} is below zero: the mid had already moved through their price when they filled"
    if at_fill <= 0:
        return f"{said} is the half-spread crossed"
    return f"{said} is above zero: the quote they took was below the mid by the time they filled"


def meaning(r: RoleMarkouts) -> str:
    """What a role's markouts say: did the mid move against its fills after they traded (adverse
    selection), their way, or can the data not tell; and how much of the markout is the spread."""
    who = f"{r.role.capitalize()} fills"
    d = r.drift
    if d is None:
        return (
            f"{who}: the mid's move after the fill has no interval yet ({r.fills} fill(s), fewer than two events "
            "with a markout past the fill): nothing to say about adverse selection."
        )
    iv = d.move
    assert iv.lo is not None and iv.hi is not None
    span = f"(95% CI {_c(iv.lo)} to {_c(iv.hi)}, {iv.n} fills in {iv.events} events)"
    spread = _at_fill_words(r.role, d.at_fill)
    if iv.hi < 0:
        return (
            f"**{who} were adversely selected**: {_by(d.label)} the mid had moved {_c(iv.estimate)} a contract "
            f"against them since they traded {span}, beyond the spread ({spread})."
        )
    if iv.lo > 0:
        return (
            f"{who} were on the side the market moved to: {_by(d.label)} the mid had moved {_c(iv.estimate)} a "
            f"contract their way since they traded {span}; {spread}."
        )
    return (
        f"{who}: the mid's move since they traded, {_by(d.label)}, {_c(iv.estimate)} a contract {span}, cannot "
        f"be told from zero: no adverse selection shown, and no information either; {spread}."
    )


def blind_lines(roles: list[RoleMarkouts], tick_gap: int | None) -> list[str]:
    """Under the table: which horizons read the fill's own quote, and why (the data's sampling)."""
    gap = f" (a median of {_gap(tick_gap)} here)" if tick_gap else ""
    words = []
    for r in roles:
        every = [c.label for c in r.cells if c.all_blind]
        if every:
            words.append(
                f"{r.role.capitalize()} fills at {' and '.join(every)}: none saw a newer quote, so those rows say "
                f'"{BLIND_WORDS}".'
            )
        for c in r.cells:
            if c.blind and not c.all_blind and c.plain is not None:
                words.append(
                    f"{r.role.capitalize()} fills at {c.label}: {c.blind} of {c.plain.n} read the fill-time quote "
                    "(counted in its mean)."
                )
    if not words:
        return []
    return [
        "",
        f"The data's quotes come a tick apart{gap}: a horizon with no tick between the fill and it reads the quote "
        "the fill traded on, so it measures nothing. " + " ".join(words),
    ]


def _gap(ms: int) -> str:
    return f"{ms / 60_000:g} min" if ms >= 60_000 else f"{ms / 1000:g} s"


def section(
    fills: list[FillMarkouts], data_end_ms: int | None, replayed: bool = False, tick_gap: int | None = None
) -> list[str]:
    """The adverse-selection table (maker vs taker, by horizon) and what it means; ``tick_gap``:
    the data's median tick interval (``tick_gap_ms``), said where a horizon is shorter than it."""
    if not fills:
        return ["No fill in this period: no markouts."]
    roles = by_role(fills)
    out = [
        "Each fill's markout per contract: the market's mid at a time after it less the price paid (a sale: the "
        "price received less the mid), the NO side mirrored (one minus the YES mid); after fees, less the fill's "
        "fee per contract too. Above zero: the market moved the fill's way. The mid is the last stored quote at or "
        "before the time (held at the market's close once it stopped trading); *at fill* is the quote the fill "
        "traded against (a taker's markout there is minus the half-spread it crossed), *close* the closing line "
        "of the closing-line value above. Intervals resample events.",
        "",
        "| role | horizon | fills | events | mean markout | 95% CI (by event) | after fees | 95% CI (by event) "
        "| pending | no mid |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in roles:
        for c in r.cells:
            n, ev = (c.plain.n, c.plain.events) if c.plain is not None else (0, 0)
            if c.all_blind:
                figures = f"{BLIND_WORDS} | — | — | —"  # not a measurement: no figure
                out.append(f"| {r.role} | {c.label} | {n} | {ev} | {figures} | {c.pending} | {c.no_mid} |")
                continue
            out.append(
                f"| {r.role} | {c.label} | {n} | {ev} | {_mean(c.plain)} | {_ci(c.plain)} | {_mean(c.net)} | "
                f"{_ci(c.net)} | {c.pending} | {c.no_mid} |"
            )
    out += blind_lines(roles, tick_gap)
    for r in roles:
        out += ["", meaning(r)]
    if mk.MAKER not in {r.role for r in roles}:
        out += ["", "No maker fills: every paper fill here is a taker's (resting orders come with issue #23)."]
    out += [
        "",
        f"*Pending*: the time is past the data's end (the last tick, {fmt_utc(data_end_ms)}), or the market still "
        "trades (close): left out, never counted as zero; a later report fills them in. *No mid*: the quote then "
        "was one-sided or empty, none was stored, or the market has no closing price.",
    ]
    if replayed:
        out += [
            "",
            "This database is a replay's: it stored each market's latest quote per 64 ticks committed, not every "
            "quote it played, so a horizon's mid is as of those quotes (a live run stores every new quote: exact).",
        ]
    return out
