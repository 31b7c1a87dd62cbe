"""Odds of ruin: a Monte Carlo over the next N trades at the current rules and sizes (issue #24, 8).

Pure: numpy, no I/O. The trades are a sample (the run's own recent filled buys, or a given list);
each path resamples them by block (a block bootstrap) and plays them one after another:

- **Blocks.** A market's trades share one outcome, so a market is one block; the markets of a
  mutually exclusive event (``exclusive``) are one block, drawn jointly: one uniform per block
  picks at most one YES (the probabilities are scaled down to sum to 1 when they sum past it; what
  is left below 1 is "none of these markets", e.g. a bracket not traded). Markets of an event not
  known to be exclusive are drawn independently (``RuinResult.notes`` says so).
- **Outcomes.** The optimistic case draws YES with p̂ (the decision's), the sceptical case with
  the market's mid at decision time; a market traded more than once uses its latest. Both cases
  use the same uniforms (common random numbers), so their difference is not noise.
- **Sizes.** ``proportional`` (the engine's rule): a trade risks the same fraction of equity as
  it did when it was decided (its cost and fee over the equity then), capped at the per-trade cap;
  it wins ``win_mult`` per dollar risked (contracts / cost - 1) or loses the stake. ``fixed``:
  the recorded dollar stake (the closed-form tests use it).
- **The gate.** A trade whose stake would take the day's loss past the daily cap is refused (the
  gate's headroom check), as is one whose stake is more than the equity; a day is
  ``trades_per_day`` trades. A day "stops" when the cap binds: a trade is refused for it, or
  the loss reaches it.
- **The drawdown stop.** The first trade after which equity is ``drawdown_stop`` below its peak;
  with ``halt_at_drawdown_stop`` the path stops trading there (the rule of issue #24, 6). The
  peak starts at ``start_peak`` (the run's stored peak, when equity is below it now), else at the
  starting equity. With the stop halting, some falls cannot happen at all: a path trades only
  while it is less than the stop below its peak and a trade risks at most ``f`` of equity, so no
  path ever falls ``1 - (1 - stop)(1 - f)`` or more below its peak
  (``RuinResult.unreachable_drawdown``), nor below that much under its starting peak (ruin at a
  floor there is impossible: ``RuinResult.ruin_impossible``). A zero there is by construction,
  not a measurement, and the front-ends say so.
- **Ruin.** Equity below ``ruin_floor`` (default: the smallest trade's stake in dollars: it can
  no longer pay the smallest trade seen). A path that reaches ``target`` stops (an upper
  absorbing barrier, for the gambler's-ruin check).

Every probability comes with its Monte Carlo standard error, sqrt(p (1 - p) / paths).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

#: Equity fan quantiles (share of starting equity).
BAND_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
DRAWDOWN_LEVELS = (0.05, 0.10, 0.20)
CASES = ("optimistic (p̂)", "sceptical (market)")


@dataclass(frozen=True)
class RuinTrade:
    ticker: str
    side: Literal["yes", "no"]
    stake: float  # dollars the trade could lose: its cost and fee (a buy loses at most that)
    stake_frac: float  # the same over the equity at decision
    win_mult: float  # profit per dollar staked when its side wins: contracts / stake - 1
    p_hat: float  # P(YES) the decision used
    market: float  # the market's P(YES) at decision (its mid)


@dataclass(frozen=True)
class RuinSpec:
    n_trades: int
    paths: int
    seed: int
    start_equity: float  # dollars
    max_loss_frac: float | None = 0.01  # the per-trade cap (proportional sizing)
    daily_cap_frac: float | None = 0.03  # of the day's starting equity; None: no daily cap
    trades_per_day: int = 20
    drawdown_levels: tuple[float, ...] = DRAWDOWN_LEVELS
    drawdown_stop: float = 0.10
    halt_at_drawdown_stop: bool = False
    ruin_floor: float | None = None  # dollars; None: the smallest trade's stake
    sizing: Literal["proportional", "fixed"] = "proportional"
    target: float | None = None  # dollars: a path that reaches it stops
    start_peak: float | None = None  # dollars: the peak the drawdown is measured from (None: start_equity)
    events: Mapping[str, str] = field(default_factory=dict)  # ticker -> event
    exclusive: frozenset[str] = frozenset()  # events whose markets are mutually exclusive


@dataclass(frozen=True)
class Prob:
    p: float
    se: float  # Monte Carlo standard error

    @classmethod
    def of(cls, hits: np.ndarray) -> Prob:
        n = hits.size
        p = float(hits.mean()) if n else 0.0
        return cls(p, math.sqrt(p * (1 - p) / n) if n else 0.0)


@dataclass(frozen=True)
class CaseResult:
    case: str
    p_drawdown: dict[float, Prob]
    p_daily_stop: Prob
    p_ruin: Prob
    p_dd_stop: Prob  # the drawdown stop reached within the N trades
    time_to_dd_stop: tuple[float, float, float] | None  # trades: (10%, median, 90%) of the paths that reach it
    band_steps: np.ndarray  # the trade counts the bands are taken at (0 .. N, at most 201 of them)
    bands: np.ndarray  # len(BAND_QUANTILES) x len(band_steps): equity over starting equity
    max_drawdown: np.ndarray  # per path, a fraction of the peak
    final: np.ndarray  # per path, equity over starting equity


@dataclass(frozen=True)
class RuinResult:
    spec: RuinSpec
    cases: tuple[CaseResult, CaseResult]
    ruin_floor: float
    notes: tuple[str, ...]
    trades: int  # in the sample
    blocks: int
    #: The smallest drawdown no path can reach under the rules (None: no such bound, e.g. the
    #: drawdown stop does not halt): a P(drawdown >= x) at or past it is zero by construction.
    unreachable_drawdown: float | None = None

    @property
    def ruin_impossible(self) -> bool:
        """Whether no path can fall below the ruin floor: the drawdown stop halts it first."""
        bound, s = self.unreachable_drawdown, self.spec
        return bound is not None and self.ruin_floor <= start_peak(s) * (1 - bound)


def start_peak(spec: RuinSpec) -> float:
    """The peak every path's drawdown starts from: the stored one when above the starting equity."""
    return max(spec.start_equity, spec.start_peak or 0.0)


def unreachable_drawdown(trades: Sequence[RuinTrade], spec: RuinSpec) -> float | None:
    """``1 - (1 - stop)(1 - f)``: with the stop halting a path, a path trades only while less than
    ``stop`` below its peak and loses at most ``f`` of its equity on a trade (the largest share any
    sampled trade risks, capped at the per-trade cap), so its drawdown stays strictly below this.
    None when the stop does not halt, sizes are fixed dollars, or a path starts at the stop already."""
    if not spec.halt_at_drawdown_stop or spec.sizing != "proportional":
        return None
    if 1 - spec.start_equity / start_peak(spec) >= spec.drawdown_stop:
        return None
    f = max(t.stake_frac for t in trades)
    if spec.max_loss_frac is not None:
        f = min(f, spec.max_loss_frac)
    f = min(max(f, 0.0), 1.0)
    return 1 - (1 - spec.drawdown_stop) * (1 - f)


def blocks_of(trades: Sequence[RuinTrade], events: Mapping[str, str], exclusive: frozenset[str]) -> list[list[int]]:
    """Trade indices per block: one per market, one per mutually exclusive event."""
    keys: dict[str, list[int]] = {}
    for i, t in enumerate(trades):
        ev = events.get(t.ticker)
        key = f"e:{ev}" if ev is not None and ev in exclusive else f"m:{t.ticker}"
        keys.setdefault(key, []).append(i)
    return list(keys.values())


def yes_intervals(
    trades: Sequence[RuinTrade], blocks: list[list[int]], probs: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per trade, [lo, hi): its market is YES when the block's uniform falls in it. A block's
    markets get disjoint intervals (at most one YES), scaled to sum to at most 1; ``probs`` is
    P(YES) per trade (a market's latest trade's value is used for all of its trades)."""
    lo = np.zeros(len(trades))
    hi = np.zeros(len(trades))
    for b in blocks:
        latest: dict[str, float] = {}
        for i in b:
            latest[trades[i].ticker] = min(max(float(probs[i]), 0.0), 1.0)
        total = sum(latest.values())
        scale = 1 / total if total > 1 else 1.0
        at = 0.0
        span: dict[str, tuple[float, float]] = {}
        for t, p in latest.items():
            span[t] = (at, at + p * scale)
            at += p * scale
        for i in b:
            lo[i], hi[i] = span[trades[i].ticker]
    return lo, hi


def sample_paths(
    blocks: list[list[int]], n_trades: int, paths: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(trade index, block instance) per path and step, each P x N: each path draws blocks
    uniformly with replacement, plays each block's trades in their order, and keeps the first N."""
    members = np.fromiter((i for b in blocks for i in b), dtype=np.int64)
    blen = np.array([len(b) for b in blocks], dtype=np.int64)
    bstart = np.concatenate(([0], np.cumsum(blen)[:-1]))
    flat = rng.integers(len(blocks), size=paths * n_trades)  # N blocks: at least N trades
    lens = blen[flat]
    inst = np.repeat(np.arange(flat.size), lens)
    offs = np.concatenate(([0], np.cumsum(lens)[:-1]))
    within = np.arange(inst.size) - np.repeat(offs, lens)
    trade = members[bstart[flat[inst]] + within]
    per_path = lens.reshape(paths, n_trades).sum(axis=1)
    pstart = np.concatenate(([0], np.cumsum(per_path)[:-1]))
    pos = pstart[:, None] + np.arange(n_trades)[None, :]
    return trade[pos], inst[pos]


def simulate(trades: Sequence[RuinTrade], spec: RuinSpec) -> RuinResult:
    if not trades:
        raise ValueError("no trades to sample")
    if spec.n_trades <= 0 or spec.paths <= 0 or spec.start_equity <= 0 or spec.trades_per_day <= 0:
        raise ValueError("trades, paths, trades per day and the starting equity must be > 0")
    rng = np.random.default_rng(spec.seed)
    blocks = blocks_of(trades, spec.events, spec.exclusive)
    idx, inst = sample_paths(blocks, spec.n_trades, spec.paths, rng)
    u = rng.random(int(inst.max()) + 1)[inst]  # one uniform per block instance, shared by both cases
    floor = spec.ruin_floor if spec.ruin_floor is not None else min(t.stake for t in trades)
    notes = []
    shared: dict[str, set[str]] = {}
    for t in trades:
        ev = spec.events.get(t.ticker)
        if ev is not None and ev not in spec.exclusive:
            shared.setdefault(ev, set()).add(t.ticker)
    unknown = sorted(e for e, ts in shared.items() if len(ts) > 1)
    if unknown:
        notes.append(
            f"{len(unknown)} event(s) with several traded markets ({', '.join(unknown[:3])}"
            f"{', …' if len(unknown) > 3 else ''}): whether they are mutually exclusive is unknown "
            "(not stored as such: name them with --exclusive), so their markets are drawn independently"
        )
    yes_side = np.array([t.side == "yes" for t in trades])
    cases = []
    for name, probs in zip(CASES, ([t.p_hat for t in trades], [t.market for t in trades])):
        lo, hi = yes_intervals(trades, blocks, probs)
        yes = (u >= lo[idx]) & (u < hi[idx])
        win = yes == yes_side[idx]
        cases.append(_play(name, trades, spec, idx, win, floor))
    return RuinResult(
        spec, (cases[0], cases[1]), floor, tuple(notes), len(trades), len(blocks), unreachable_drawdown(trades, spec)
    )


def _play(
    name: str, trades: Sequence[RuinTrade], spec: RuinSpec, idx: np.ndarray, win: np.ndarray, floor: float
) -> CaseResult:
    P, N = idx.shape
    stake_d = np.array([t.stake for t in trades])
    frac = np.array([t.stake_frac for t in trades])
    if spec.max_loss_frac is not None:
        frac = np.minimum(frac, spec.max_loss_frac)
    mult = np.array([t.win_mult for t in trades])
    eq = np.full(P, float(spec.start_equity))
    peak = np.full(P, start_peak(spec))
    day_start = eq.copy()
    max_dd = np.zeros(P)
    alive = np.ones(P, dtype=bool)
    ruined = np.zeros(P, dtype=bool)
    day_stopped = np.zeros(P, dtype=bool)  # the cap bound on some day
    today_stopped = np.zeros(P, dtype=bool)
    dd_time = np.full(P, -1)
    steps = np.unique(np.linspace(0, N, min(N, 200) + 1).astype(np.int64))
    at_step = set(steps.tolist())
    bands = np.empty((len(BAND_QUANTILES), steps.size))
    bands[:, 0] = 1.0
    col = 1
    for n in range(N):
        if not alive.any():  # every path stopped: equity stays where it is
            bands[:, col:] = np.quantile(eq / spec.start_equity, BAND_QUANTILES)[:, None]
            break
        i = idx[:, n]
        stake = stake_d[i] if spec.sizing == "fixed" else frac[i] * eq
        ok = alive & (stake <= eq) & (stake > 0)
        if spec.daily_cap_frac is not None:
            cap = spec.daily_cap_frac * day_start
            binds = today_stopped | (day_start - eq + stake > cap)
            day_stopped |= alive & binds
            ok &= ~binds
        eq = eq + np.where(ok, np.where(win[:, n], stake * mult[i], -stake), 0.0)
        peak = np.maximum(peak, eq)
        dd = 1 - eq / peak
        max_dd = np.maximum(max_dd, dd)
        hit = (dd_time < 0) & (dd >= spec.drawdown_stop - 1e-12)
        dd_time[hit] = n + 1
        if spec.halt_at_drawdown_stop:
            alive &= dd_time < 0
        if spec.daily_cap_frac is not None:
            today_stopped |= day_start - eq >= spec.daily_cap_frac * day_start
        newly = alive & (eq < floor)
        ruined |= newly
        alive &= ~newly
        if spec.target is not None:
            alive &= eq < spec.target
        if (n + 1) % spec.trades_per_day == 0:
            day_start = eq.copy()
            today_stopped[:] = False
        if n + 1 in at_step:
            bands[:, col] = np.quantile(eq / spec.start_equity, BAND_QUANTILES)
            col += 1
    reached = dd_time[dd_time > 0]
    times = None
    if reached.size:
        q10, q50, q90 = np.quantile(reached, (0.1, 0.5, 0.9))
        times = (float(q10), float(q50), float(q90))
    return CaseResult(
        case=name,
        p_drawdown={x: Prob.of(max_dd >= x - 1e-12) for x in spec.drawdown_levels},
        p_daily_stop=Prob.of(day_stopped),
        p_ruin=Prob.of(ruined),
        p_dd_stop=Prob.of(dd_time > 0),
        time_to_dd_stop=times,
        band_steps=steps,
        bands=bands,
        max_drawdown=max_dd,
        final=eq / spec.start_equity,
    )


def trades_per_day(day_counts: Sequence[int]) -> int:
    """A day of the simulation: the run's mean trades per UTC day that had any (at least 1)."""
    days = [c for c in day_counts if c > 0]
    return max(1, round(sum(days) / len(days))) if days else 1
