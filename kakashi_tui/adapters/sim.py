"""The embedded simulated exchange: Kakashi's default source, deterministic from a seed.

Several binary markets whose hidden probability drifts (a random walk in log-odds);
quotes lag it with noise, with spreads of 1-4 cents and several depth levels. Markets
open, close, settle YES with their hidden probability at close, and are replaced by new
ones. Time is a simulated clock: each tick advances ``step_ms`` of market time, so the
simulator can run far faster than real time. Everything here is SIMULATED.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from kakashi_tui.adapters.source import FetchBatch, RawRow
from kakashi_tui.core.models import Estimate, Side
from kakashi_tui.core.money import cents_to_price, price

ORACLE_SOURCE = "sim-oracle (simulated)"


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
    bid_c: int = 0
    ask_c: int = 0
    yes_depth: tuple[tuple[int, int], ...] = ()
    no_depth: tuple[tuple[int, int], ...] = ()
    volume: int = 0

    @property
    def p(self) -> float:
        return _sigmoid(self.x)


class SimExchange:
    name = "sim"

    def __init__(
        self,
        seed: int = 7,
        markets: int = 8,
        start_ms: int | None = None,
        step_ms: int = 60_000,
        lifetime_ticks: tuple[int, int] = (40, 160),
    ) -> None:
        if markets < 1:
            raise ValueError("the simulator needs at least one market")
        self.seed = seed
        self.n_markets = markets
        self.start_ms = start_ms if start_ms is not None else (int(time.time()) // 60) * 60_000
        self.step_ms = step_ms
        self.lifetime = lifetime_ticks
        self.rng = random.Random(seed)
        self.tick = 0
        self._serial = 0
        self.live: list[_SimMarket] = [self._new_market() for _ in range(markets)]
        self._settled: list[_SimMarket] = []
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
        )

    def _quote(self, m: _SimMarket) -> None:
        r = self.rng
        spread = r.randint(1, 4)
        mid_c = min(max(m.mid * 100, 2.0), 98.0)
        bid = int(round(mid_c - spread / 2))
        bid = min(max(bid, 1), 98)
        ask = min(bid + spread, 99)
        m.bid_c, m.ask_c = bid, ask
        levels = r.randint(3, 5)
        m.yes_depth = tuple((bid - i, r.randint(5, 120)) for i in range(levels) if bid - i >= 1)
        no_best = 100 - ask
        m.no_depth = tuple((no_best - i, r.randint(5, 120)) for i in range(levels) if no_best - i >= 1)
        m.volume += r.randint(0, 50)

    def advance(self) -> None:
        """One tick of simulated time: drift; markets past their close stop quoting (closed) and
        settle on the next tick; replacements open."""
        self.tick += 1
        r = self.rng
        self._settled = [m for m in self._closed]
        for m in self._settled:
            m.result = Side.YES if r.random() < m.p else Side.NO
        self._closed = []
        still: list[_SimMarket] = []
        for m in self.live:
            m.x = min(max(m.x + r.gauss(0, 0.06), -4.0), 4.0)
            m.mid += 0.25 * (m.p - m.mid) + r.gauss(0, 0.012)
            if self.tick >= m.close_tick:
                self._closed.append(m)
            else:
                self._quote(m)
                still.append(m)
        while len(still) < self.n_markets:
            nm = self._new_market()
            self._quote(nm)
            still.append(nm)
        self.live = still

    def fast_forward(self, tick: int) -> None:
        while self.tick < tick:
            self.advance()

    # -- the feed -------------------------------------------------------------------
    def _market_row(self, m: _SimMarket, status: str) -> dict:
        return {
            "ticker": m.ticker,
            "title": m.title,
            "series": "SIM",
            "event_ticker": m.ticker.rsplit("-", 1)[0],
            "status": status,
            "open_ts": self.start_ms + m.open_tick * self.step_ms,
            "close_ts": self.start_ms + m.close_tick * self.step_ms,
            "result": m.result.value if m.result else None,
        }

    def checkpoint(self) -> dict[str, str]:
        """What the store keeps so a restart resumes this exact market state."""
        return {"sim_tick": str(self.tick)}

    def fetch(self) -> FetchBatch:
        """Advance one tick of simulated time, then report the book."""
        self.advance()
        now = self.now_ms()
        rows: list[RawRow] = []
        for m in self._settled:
            rows.append(RawRow(market=self._market_row(m, "settled"), snapshot=None, payload={"sim": m.ticker}))
        for m in self._closed:
            rows.append(RawRow(market=self._market_row(m, "closed"), snapshot=None, payload={"sim": m.ticker}))
        for m in self.live:
            snap = {
                "ticker": m.ticker,
                "ts": now,
                "yes_bid": cents_to_price(m.bid_c),
                "yes_ask": cents_to_price(m.ask_c),
                "last": cents_to_price(min(max(int(round(m.mid * 100)), 1), 99)),
                "yes_bids": [{"price": cents_to_price(p), "qty": q} for p, q in m.yes_depth],
                "no_bids": [{"price": cents_to_price(p), "qty": q} for p, q in m.no_depth],
                "volume": m.volume,
            }
            rows.append(RawRow(market=self._market_row(m, "open"), snapshot=snap, payload={"sim": m.ticker}))
        return FetchBatch(rows=rows)

    def hidden_probability(self, ticker: str) -> float | None:
        for m in self.live:
            if m.ticker == ticker:
                return m.p
        return None


class SimOracle:
    """p_hat = the simulator's hidden probability plus Gaussian noise. SIMULATED, not a model."""

    source = ORACLE_SOURCE

    def __init__(self, exchange: SimExchange, noise: float = 0.03, seed: int = 0) -> None:
        self.exchange = exchange
        self.noise = noise
        self.seed = seed

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        out = []
        for t in tickers:
            p = self.exchange.hidden_probability(t)
            if p is None:
                continue
            # Noise seeded per (seed, ticker, tick): the same run re-estimates identically.
            r = random.Random(f"{self.seed}:{t}:{self.exchange.tick}")
            q = min(max(p + r.gauss(0, self.noise), 0.01), 0.99)
            out.append(Estimate(ticker=t, p_hat=price(round(q, 4)), source=self.source, ts=now_ms))
        return out
