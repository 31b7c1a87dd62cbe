"""The band (issue #23, item 7): the run's paper orders under the queue models it does not trade by.

The engine trades by one queue model (``[fills] queue_model``, ``risk_averse`` by default): the
orders' states, the ledger, the caps and the decisions see that model's fills and no other.
Beside it, in every market with a resting order, it keeps **shadow** fill models, one for each of
the other two queue models: copies of the same orders as submitted, fed the same tape (book
updates, prints, gaps), the same clock and the same cancels (the kill switch, the daily and
drawdown stops, a flatten, the operator's, a re-pricing, a market that closed). A shadow's fills
never reach the ledger, the risk gate or the real orders: the engine stores them apart
(``shadow_events``), and the replay and the post-mortem read the band from there.

- **The same orders, not three runs.** A run's decisions depend on its fills (a market with a
  position or a live order is not decided again; equity sizes the next trade), so three
  independent runs would compare three different sets of orders. The band compares fill models
  on one set: the orders the run placed. Order by order, fills(risk_averse) <= fills(prob) <=
  fills(front) then holds (core/queue.py's property: the queue ahead of us is never larger under
  ``prob`` than under ``risk_averse``, and none under ``front``). Several of our orders in one
  market share a print's size and the book's crossing size (liquidity consumption), which can
  break it in sum; the band then prints the rows as they are and says so.
- **Taker orders** (``ioc``) fill against the book at their activation, the same under every
  queue model. A market whose orders are all takers gets no shadows (a take-mode run costs
  nothing more) and the band counts their fills under every model; once a market has a resting
  order, its pending takers and every later order there are copied too (our resting orders'
  fills consume the book a taker then walks).
- **Start.** A market's shadows start from its real fill models' state just before the order
  that opens them is added (``MarketFills.twin``: the book in force, a gap, what our fills
  consumed), so the copy and the real order see the same market.
- **prob draws** from a ``random.Random`` of the shadow's own (``Draws``), seeded by ``SEED``, the
  market and the id of the order that opened its shadows (a text seed: the same in every process
  and run), never from another stream: the same data gives the same shadow fills.
- **A restart** (or a tick rolled back) resumes the shadows exactly as the engine resumes the
  real orders (core/queue.py, "A restart"): the copies from their stored events (fills and fee
  accumulators included), each model's ``FillsState`` as of the last committed tick
  (``export_states``, ``restore_states``), and prob's generator from its seed and the number of
  draws it had made (``ShadowState``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from kakashi_tui.core.fees import FeeTerms
from kakashi_tui.core.models import Quote
from kakashi_tui.core.orders import OrderEvent, OrderFill, OrderState, PaperOrder
from kakashi_tui.core.queue import QUEUE_MODELS, FillsState, MarketFills

#: prob's draws in a market's shadow: ``random.Random(f"{SEED}:{ticker}:{order id}")``.
SEED = "kakashi-band"
#: A shadow event that is no state: a cancel asked for (as the engine's ``order_events``).
CANCEL_REQUESTED = "cancel_requested"


def as_submitted(o: PaperOrder) -> PaperOrder:
    """A fresh copy of ``o`` as it was submitted (its first event only; a cancel it was asked
    for kept): what a shadow model starts from, whatever the real model did to ``o`` since."""
    return replace(o, events=[o.events[0]], filled_hundredths=0, acc=None)


@dataclass(frozen=True)
class ShadowEvent:
    """One shadow order's event: an order state (``OrderState``'s value, with the fill when it is
    one) or ``cancel_requested``."""

    model: str
    order: PaperOrder
    ts: int
    state: str
    reason: str = ""
    fill: OrderFill | None = None


def _events(model: str, got: Iterable[tuple[PaperOrder, OrderEvent]]) -> list[ShadowEvent]:
    return [ShadowEvent(model, o, e.ts, e.state.value, e.reason, e.fill) for o, e in got]


class Draws(random.Random):
    """prob's generator in a shadow: seeded by ``seed`` (text), counting its draws so that a
    restart resumes it where it stood (``drawn`` draws made already)."""

    def __init__(self, seed: str, drawn: int = 0) -> None:
        super().__init__(seed)
        self.seed_text, self.drawn = seed, 0
        for _ in range(drawn):
            self.random()

    def random(self) -> float:
        self.drawn += 1
        return super().random()


def _rng(model: str, ticker: str, order_id: str) -> Draws | None:
    return Draws(f"{SEED}:{ticker}:{order_id}") if model == "prob" else None


@dataclass(frozen=True)
class ShadowState:
    """What one market's shadow model knows beyond its copies and the book in force (a restart's):
    its ``FillsState`` (queue places, gap, consumed liquidity) and, for ``prob``, its generator's
    seed and draws made (None, 0 otherwise)."""

    fills: FillsState
    seed: str | None = None
    drawn: int = 0


class Shadows:
    """The shadow fill models of one run: for each market with a resting order, one
    ``MarketFills`` per queue model other than ``real_model``, holding copies of its orders."""

    def __init__(self, real_model: str) -> None:
        self.models = tuple(m for m in QUEUE_MODELS if m != real_model)
        #: ticker -> model -> its fill models (while some copy there is not done); always read in
        #: ``models``' order, so a market rebuilt from the store plays as the one it replaces
        self.markets: dict[str, dict[str, MarketFills]] = {}

    def view(self, model: str) -> dict[str, MarketFills]:
        """One model's fill models by market (fed the tape as the real ones are)."""
        return {t: ms[model] for t, ms in self.markets.items() if model in ms}

    def copies(self) -> Iterable[tuple[str, PaperOrder]]:
        """Every live copy, with its model."""
        for ms in self.markets.values():
            for m in self.models:
                for c in ms[m].live() if m in ms else ():
                    yield m, c

    def add(self, o: PaperOrder, real: MarketFills, now: int) -> list[ShadowEvent]:
        """Take a new order, before its market's real fill models ``real`` do (a taker with a
        latency of 0 takes the book at once: the shadows start from the book it found): copied
        when it rests or its market has shadows already. The first resting order of a market
        brings the market's pending takers along. Its copies' events so far."""
        if o.state.done or not (o.resting or o.ticker in self.markets):
            return []
        models = self.markets.get(o.ticker)
        todo = [o]
        if models is None:
            models = self.markets[o.ticker] = {}
            todo = [x for x in real.live() if x.state is OrderState.SUBMITTED and x is not o] + [o]
        out: list[ShadowEvent] = []
        for m in self.models:
            fm = models.get(m)
            if fm is None:
                fm = models[m] = real.twin(m, _rng(m, o.ticker, o.id))
            for x in todo:
                c = as_submitted(x)
                out += _events(m, fm.add(c))
                if c.cancel_requested_ts is not None:
                    out.append(ShadowEvent(m, c, c.cancel_requested_ts, CANCEL_REQUESTED))
            out += _events(m, fm.advance(now))
        return out

    def resume(self, o: PaperOrder, model: str, terms: FeeTerms, book: Quote | None, at: int, polled: bool) -> None:
        """A stored shadow copy, rebuilt (a restart, a rolled-back tick), in its market's model,
        made with ``book`` in force from ``at`` when it has none (as the engine resumes the real
        orders: ``Engine._resume_fill_models``). Its events are stored already."""
        models = self.markets.setdefault(o.ticker, {})
        fm = models.get(model)
        if fm is None:
            fm = models[model] = MarketFills(terms, model, _rng(model, o.ticker, o.id))
            if book is not None:
                fm.on_book(at, book, True, polled)
        fm.add(o)

    def request_cancels(self, real: Mapping[str, PaperOrder], now: int | None, why: str = "") -> list[ShadowEvent]:
        """Mirror the real orders' cancel requests (at their own time) onto their copies; with
        ``now``, ask every other live copy too (a kill, a stop, a flatten: every live order)."""
        out = []
        for m, c in self.copies():
            if c.cancel_requested_ts is not None:
                continue
            r = real.get(c.id)
            if r is not None and r.cancel_requested_ts is not None:
                c.request_cancel(r.cancel_requested_ts)
                out.append(ShadowEvent(m, c, r.cancel_requested_ts, CANCEL_REQUESTED))
            elif now is not None:
                c.request_cancel(now)
                out.append(ShadowEvent(m, c, now, CANCEL_REQUESTED, why))
        return out

    def close_markets(self, not_open: Callable[[str], str], now: int) -> list[ShadowEvent]:
        """A market no longer open cancels its copies at once (``not_open``: why, or "")."""
        out: list[ShadowEvent] = []
        for t, ms in self.markets.items():
            why = not_open(t)
            if not why:
                continue
            for m in self.models:
                for c in ms[m].live() if m in ms else ():
                    k = len(c.events)
                    c.cancel_rest(now, f"market {why}")
                    out += [ShadowEvent(m, c, e.ts, e.state.value, e.reason) for e in c.events[k:]]
        return out

    def export_states(self) -> dict[tuple[str, str], ShadowState]:
        """Each (market, model)'s state as it stands, where it has any (for the tick's checkpoint)."""
        out = {}
        for t, ms in self.markets.items():
            for m in self.models:
                fm = ms.get(m)
                if fm is None:
                    continue
                rng = fm.rng
                seed, drawn = (rng.seed_text, rng.drawn) if isinstance(rng, Draws) else (None, 0)
                st = fm.export_state()
                if not st.empty or drawn:
                    out[(t, m)] = ShadowState(st, seed, drawn)
        return out

    def restore_states(self, states: Mapping[tuple[str, str], ShadowState]) -> None:
        """Put back what ``export_states`` gave at the last committed tick (a restart: after
        ``resume`` took the live copies over their markets' books)."""
        for t, ms in self.markets.items():
            for m, fm in ms.items():
                st = states.get((t, m))
                fm.restore_state(st.fills if st is not None else FillsState({}))
                if st is not None and st.seed is not None and m == "prob":
                    fm.rng = Draws(st.seed, st.drawn)

    def forget_done(self) -> None:
        """Let go of the copies that are done, and of a market once none of its copies is live."""
        for t in list(self.markets):
            ms = self.markets[t]
            for fm in ms.values():
                fm.forget_done()
            if not any(fm.orders for fm in ms.values()):
                del self.markets[t]
