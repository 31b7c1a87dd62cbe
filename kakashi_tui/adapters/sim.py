"""The embedded simulated exchange: Kakashi's default source, deterministic from a seed.

Several binary markets whose hidden probability drifts (a random walk in log-odds);
quotes lag it with noise, with spreads of 1-4 cents and several depth levels, some sizes
fractional (hundredths of a contract, as Kalshi's ``*_fp`` counts). One market in four is
``tapered_deci_cent``: in the tails (below 10 cents, above 90) it quotes on the 0.1-cent
grid (0.0030, 0.9930). Markets are ``active``, then ``closed`` at their close, ``determined``
(YES with their hidden probability) the tick after and ``finalized`` the tick after that;
one settled market in twenty is ``disputed`` and ``amended`` to the other result before it is
finalized. Each quote is stamped with the simulated exchange's own time of that quote. Most
steps re-quote every live market at that step's instant; now and then a market's makers step
away (``quiet_rate``, the chance per market per step, for 1 to ``QUIET_MAX_STEPS`` steps) and
it is not re-quoted: the feed re-sends its last quote with that quote's old time, so the risk
gate's stale-quote guard refuses to trade on it. Quiet spells are drawn from a stream of their
own: the same seed draws the same prices and sizes whatever the rate.
Time is a simulated clock: each tick advances ``step_ms`` of market time, so the simulator can
run far faster than real time. Raw rows follow
adapters/source.py (decimal strings for prices and counts). Everything here is SIMULATED.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from kakashi_tui.adapters.source import Estimator, FetchBatch, RawRow, Source
from kakashi_tui.core.models import GRID, Estimate, Side, qty_text
from kakashi_tui.core.money import price

ORACLE_SOURCE = "sim-oracle (simulated)"
NOISE_SOURCE = "sim-noise (simulated)"
QUIET_RATE = 0.05  # default: the chance per market per step that its makers step away
QUIET_MAX_STEPS = 3  # a quiet spell lasts 1 to this many steps
_ESTIMATE_FIELDS = set(Estimate.model_fields)  # every field given (shared: nothing changes it)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@dataclass
class _SimMarket:
    ticker: str
    title: str
    open_tick: int
    close_tick: int
    x: float  # hidden log-odds
    mid: float  # quoted mid, lags the hidden probability
    result: Side | None = None
    tapered: bool = False  # quotes in 0.1-cent ticks in the tails
    bid_cc: int = 0  # centicents
    ask_cc: int = 0
    # (price text, count) as the feed hands levels over, best first: made once per quote and
    # handed over as they are (tuples, which the collector stops tracking: issue #19)
    yes_depth: tuple[tuple[str, int | str], ...] = ()
    no_depth: tuple[tuple[str, int | str], ...] = ()
    volume_hundredths: int = 0  # traded so far (it grows while a market is quiet too)
    quoted_volume_hundredths: int = 0  # as its last quote said
    last_cc: int = 0
    quote_ms: int = 0  # when the exchange last (re)quoted it
    quiet_left: int = 0  # steps its makers stay away (its quote is not refreshed)
    snap: dict | None = None  # the quote as last published
    settled_tick: int = 0
    disputed: bool = False

    @property
    def p(self) -> float:
        return _sigmoid(self.x)


class SimExchange(Source):
    name = "sim"

    def __init__(
        self,
        seed: int = 7,
        markets: int = 8,
        start_ms: int | None = None,
        step_ms: int = 60_000,
        lifetime_ticks: tuple[int, int] = (40, 160),
        only: frozenset[str] | None = None,
        quiet_rate: float = QUIET_RATE,
    ) -> None:
        if markets < 1:
            raise ValueError("the simulator needs at least one market")
        if not 0 <= quiet_rate <= 1:
            raise ValueError("quiet_rate is a probability in [0, 1]")
        self.only = only  # --ticker: the simulation runs whole, only these markets are reported
        self.seed = seed
        self.n_markets = markets
        self.start_ms = start_ms if start_ms is not None else (int(time.time()) // 60) * 60_000
        self.step_ms = step_ms
        self.lifetime = lifetime_ticks
        self.rng = random.Random(seed)
        # A second stream for what the first simulator did not have (tails, fractions, quote
        # times, lifecycle), so the same seed still draws the same prices and sizes.
        self.rng2 = random.Random(f"{seed}:fixed-point")
        # A third for quiet spells, drawn at every step whatever was published (a resumed run
        # fast-forwards into the same spells).
        self.quiet_rate = quiet_rate
        self.rng_quiet = random.Random(f"{seed}:quiet-makers")
        self.tick = 0
        self._serial = 0
        self.live: list[_SimMarket] = [self._new_market() for _ in range(markets)]
        self._settled: list[_SimMarket] = []  # determined, disputed, amended, finalized: reported
        self._closed: list[_SimMarket] = []
        for m in self.live:
            self._quote(m)

    # -- clock ----------------------------------------------------------------------
    def now_ms(self) -> int:
        return self.start_ms + self.tick * self.step_ms

    def close(self) -> None:
        pass

    # -- evolution ------------------------------------------------------------------
    def _new_market(self) -> _SimMarket:
        self._serial += 1
        r = self.rng
        x = _logit(r.uniform(0.15, 0.85))
        life = r.randint(*self.lifetime)
        return _SimMarket(
            ticker=f"SIM-{self.seed}-{self._serial:04d}",
            title=f"Simulated event #{self._serial}",
            open_tick=self.tick,
            close_tick=self.tick + life,
            x=x,
            mid=_sigmoid(x) + r.gauss(0, 0.04),
            tapered=self._serial % 4 == 0,
        )

    def _quote(self, m: _SimMarket) -> None:
        r, r2 = self.rng, self.rng2
        spread = r.randint(1, 4)
        mid_c = min(max(m.mid * 100, 2.0), 98.0)
        bid = int(round(mid_c - spread / 2))
        bid = min(max(bid, 1), 98)
        ask = min(bid + spread, 99)
        bid_cc, ask_cc = bid * 100, ask * 100
        if m.tapered:  # 0.1-cent ticks in the tails: 0.0230, 0.9770
            if bid < 10:
                bid_cc += 10 * r2.randint(0, 9)
            if ask > 90:
                ask_cc -= 10 * r2.randint(0, 9)
        m.bid_cc, m.ask_cc = bid_cc, ask_cc
        levels = r.randint(3, 5)
        m.yes_depth = tuple(
            [
                (str(GRID[bid_cc - i * 100]), _count(self._size(r.randint(5, 120))))
                for i in range(levels)
                if bid - i >= 1
            ]
        )
        no_best = 10_000 - ask_cc
        m.no_depth = tuple(
            [
                (str(GRID[no_best - i * 100]), _count(self._size(r.randint(5, 120))))
                for i in range(levels)
                if no_best - i * 100 >= 1
            ]
        )
        m.volume_hundredths += r.randint(0, 50) * 100
        m.quoted_volume_hundredths = m.volume_hundredths
        m.last_cc = min(max(int(round(m.mid * 100)), 1), 99) * 100
        m.quote_ms = self.now_ms()  # the simulated exchange's time of this quote

    def _size(self, n: int) -> int:
        """A level's size in hundredths: whole contracts, or now and then a fraction (12.50)."""
        return n * 100 + (self.rng2.choice((25, 50, 75)) if self.rng2.random() < 0.3 else 0)

    def advance(self) -> None:
        """One tick of simulated time: drift; markets past their close stop quoting (closed),
        are determined on the next tick and finalized on the one after; replacements open."""
        self.tick += 1
        r = self.rng
        for m in self._closed:
            m.result = Side.YES if r.random() < m.p else Side.NO
            m.settled_tick = self.tick
            m.disputed = self.rng2.random() < 0.05
        self._settled = [m for m in self._settled if self.tick - m.settled_tick <= (4 if m.disputed else 1)]
        self._settled += self._closed
        self._closed = []
        still: list[_SimMarket] = []
        for m in self.live:
            m.x = min(max(m.x + r.gauss(0, 0.06), -4.0), 4.0)
            m.mid += 0.25 * (m.p - m.mid) + r.gauss(0, 0.012)
            if self.tick >= m.close_tick:
                self._closed.append(m)
            elif self._quiet(m):  # its makers are away: the last quote stands, with its time
                kept = (m.bid_cc, m.ask_cc, m.yes_depth, m.no_depth, m.quoted_volume_hundredths, m.last_cc, m.quote_ms)
                self._quote(m)  # (drawn all the same: the price stream does not depend on quiet spells)
                m.bid_cc, m.ask_cc, m.yes_depth, m.no_depth, m.quoted_volume_hundredths, m.last_cc, m.quote_ms = kept
                still.append(m)
            else:
                self._quote(m)
                m.snap = None
                still.append(m)
        while len(still) < self.n_markets:
            nm = self._new_market()
            self._quote(nm)
            still.append(nm)
        self.live = still

    def _quiet(self, m: _SimMarket) -> bool:
        """Whether ``m`` goes unquoted this step (a spell under way, or one starting)."""
        if m.quiet_left:
            m.quiet_left -= 1
            return True
        if self.quiet_rate and self.rng_quiet.random() < self.quiet_rate:
            m.quiet_left = self.rng_quiet.randint(1, QUIET_MAX_STEPS) - 1
            return True
        return False

    def _lifecycle(self, m: _SimMarket) -> tuple[str, Side | None]:
        """(status, result) of a settled market this tick."""
        age = self.tick - m.settled_tick
        if not m.disputed:
            return ("determined" if age == 0 else "finalized"), m.result
        assert m.result is not None
        return (
            ("determined", m.result),
            ("disputed", m.result),
            ("amended", m.result.other),
            ("amended", m.result.other),
            ("finalized", m.result.other),
        )[min(age, 4)]

    def fast_forward(self, tick: int) -> None:
        while self.tick < tick:
            self.advance()

    # -- the feed -------------------------------------------------------------------
    def _market_row(self, m: _SimMarket, status: str, result: Side | None = None) -> dict:
        return {
            "ticker": m.ticker,
            "title": m.title,
            "series": "SIM",
            # each simulated market is an event of its own: their outcomes are independent draws, so a
            # report's intervals, which resample events, treat them as independent (issue #24)
            "event_ticker": m.ticker,
            "status": status,
            "market_type": "binary",
            "open_ts": self.start_ms + m.open_tick * self.step_ms,
            "close_ts": self.start_ms + m.close_tick * self.step_ms,
            "result": result.value if result else None,
        }

    def checkpoint(self) -> dict[str, str]:
        """What the store keeps so a restart resumes this exact market state."""
        return {"sim_tick": str(self.tick)}

    def fetch(self) -> FetchBatch:
        """Advance one tick of simulated time, then report the book."""
        self.advance()
        rows: list[RawRow] = []
        for m in self._settled:
            status, result = self._lifecycle(m)
            rows.append(RawRow(market=self._market_row(m, status, result), snapshot=None, payload={"sim": m.ticker}))
        for m in self._closed:
            rows.append(RawRow(market=self._market_row(m, "closed"), snapshot=None, payload={"sim": m.ticker}))
        for m in self.live:
            if m.snap is None:
                m.snap = {
                    "ticker": m.ticker,
                    "ts": m.quote_ms,
                    "yes_bid": str(GRID[m.bid_cc]),
                    "yes_ask": str(GRID[m.ask_cc]),
                    "last": str(GRID[m.last_cc]),
                    "yes_bids": m.yes_depth,  # (not lists: ~45,000 tracked objects a tick at 5,000)
                    "no_bids": m.no_depth,
                    "volume": _count(m.quoted_volume_hundredths),
                }
            rows.append(RawRow(market=self._market_row(m, "active"), snapshot=m.snap, payload={"sim": m.ticker}))
        if self.only is not None:
            rows = [r for r in rows if r.market["ticker"] in self.only]
        return FetchBatch(rows=rows)

    def hidden_probability(self, ticker: str) -> float | None:
        for m in self.live:
            if m.ticker == ticker:
                return m.p
        return None


def _count(h: int) -> int | str:
    """A count as sources hand it over: an int when whole, else Kalshi's "12.50"."""
    return h // 100 if h % 100 == 0 else qty_text(h)


class SimOracle(Estimator):
    """p_hat = the simulator's hidden probability plus Gaussian noise. SIMULATED, not a model."""

    source = ORACLE_SOURCE

    def __init__(self, exchange: SimExchange, noise: float = 0.03, seed: int = 0) -> None:
        self.exchange = exchange
        self.noise = noise
        self.seed = seed

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        out = []
        live = {m.ticker: m for m in reversed(self.exchange.live)}  # (hidden_probability's first match)
        for t in tickers:
            m = live.get(t)
            if m is None:
                continue
            p = m.p
            # Noise seeded per (seed, ticker, tick): the same run re-estimates identically.
            r = random.Random(f"{self.seed}:{t}:{self.exchange.tick}")
            q = min(max(p + r.gauss(0, self.noise), 0.01), 0.99)
            # valid by construction (a ticker, a price in [0.01, 0.99]): made without validation,
            # sharing one fields set (a set per estimate was a tracked object per market per tick)
            out.append(
                Estimate.model_construct(
                    _ESTIMATE_FIELDS, ticker=t, p_hat=price(round(q, 4)), source=self.source, ts=now_ms
                )
            )
        return out


class SimNoise(Estimator):
    """p_hat = the market's quoted mid plus zero-mean Gaussian noise: a forecaster with no edge, the
    control a report's scoring must not mistake for skill (``[sim] forecaster = "noise"``).
    SIMULATED. Its noise comes from a stream of its own, seeded per (seed, ticker, tick): the
    exchange's prices are the same whichever forecaster runs."""

    source = NOISE_SOURCE

    def __init__(self, exchange: SimExchange, noise: float = 0.03, seed: int = 0) -> None:
        self.exchange = exchange
        self.noise = noise
        self.seed = seed

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        out = []
        live = {m.ticker: m for m in reversed(self.exchange.live)}
        for t in tickers:
            m = live.get(t)
            if m is None:
                continue
            mid = (m.bid_cc + m.ask_cc) / 20_000  # the quote the market shows now
            r = random.Random(f"{self.seed}:noise-forecaster:{t}:{self.exchange.tick}")
            q = min(max(mid + r.gauss(0, self.noise), 0.01), 0.99)
            out.append(
                Estimate.model_construct(
                    _ESTIMATE_FIELDS, ticker=t, p_hat=price(round(q, 4)), source=self.source, ts=now_ms
                )
            )
        return out
