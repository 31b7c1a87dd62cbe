"""Issue #24: the simulator's hidden probability is a martingale, so a forecaster with no
information pays the spread and gains nothing back from the walk.

A market settles YES with its hidden probability at the close, so the probability now is the
chance of YES only if its expected value one step on is itself. The exchange's own step is
evaluated exactly: its walk's shocks are replaced by Gauss-Hermite nodes (every other draw is the
seeded stream's), and the nodes' weighted mean of the next probability is compared with the
probability before the step. The old walk (a plain random walk in log-odds) moved p = 0.2 by
+1.7 centicents a step toward 1/2; what is left now is under a thousandth of that."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kakashi_tui.adapters.sim import STEP_SD, SimExchange

START_MS = 1_767_571_200_000
#: a step's bias allowed, in probability: 0.01 centicent (the old walk's was up to 1.7 centicents)
TOLERANCE = 1e-6


class _Nodes:
    """Stands in for a stream's ``gauss``: the walk's draws (standard deviation ``STEP_SD``) are
    the given shocks in order; the quotes' noise (any other deviation) is 0."""

    def __init__(self, shocks: list[float]) -> None:
        self.shocks = iter(shocks)

    def __call__(self, mu: float, sigma: float) -> float:
        return mu + (next(self.shocks) if sigma == STEP_SD else 0.0)


@pytest.mark.parametrize("p0", [0.05, 0.2, 0.35, 0.5, 0.8, 0.95])
def test_a_markets_hidden_probability_is_a_martingale(p0):
    z, w = np.polynomial.hermite_e.hermegauss(16)
    w = w / w.sum()
    ex = SimExchange(seed=3, markets=len(z), start_ms=START_MS, lifetime_ticks=(50, 50), prints_per_step=0)
    x0 = math.log(p0 / (1 - p0))
    for m in ex.live:
        m.x = x0
    ex.rng.gauss = _Nodes([STEP_SD * float(v) for v in z])  # type: ignore[method-assign]
    ex.advance()
    assert len(ex.live) == len(z) and not ex._closed  # (every market stepped once, none closed)
    mean = sum(float(wk) * m.p for wk, m in zip(w, ex.live))
    assert abs(mean - p0) < TOLERANCE, f"E[p'] - p = {(mean - p0) * 10_000:+.4f} centicents a step"


@pytest.mark.parametrize(
    "w0", [(0.3, -0.5, 1.0, -1.2), (2.0, -1.0, -1.0, -1.0), (1.5, 1.4, -2.0, 0.2)], ids=["mixed", "favourite", "two"]
)
def test_each_brackets_hidden_probability_is_a_martingale(w0):
    z, w = np.polynomial.hermite_e.hermegauss(5)  # (exact to degree 9: the step is 0.06 wide)
    w = w / w.sum()
    grid = list(itertools.product(range(len(z)), repeat=len(w0)))
    ex = SimExchange(
        seed=3, markets=1, start_ms=START_MS, lifetime_ticks=(50, 50), prints_per_step=0, bracket_events=len(grid)
    )
    for ev in ex.events:
        ev.w = list(w0)
        ev.spread_probabilities()
    p0 = [m.p for m in ex.events[0].markets]
    ex.rng_events.gauss = _Nodes(  # type: ignore[method-assign]
        [STEP_SD * float(z[i]) for idx in grid for i in idx]
    )
    ex.advance()
    assert len(ex.events) == len(grid) and not ex._ev_closed
    weight = [math.prod(float(w[i]) for i in idx) for idx in grid]
    for k, before in enumerate(p0):
        mean = sum(wt * ev.markets[k].p for wt, ev in zip(weight, ex.events))
        assert abs(mean - before) < TOLERANCE, f"bracket {k + 1}: {(mean - before) * 10_000:+.4f} centicents a step"
