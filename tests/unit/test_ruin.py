"""core/ruin.py: the odds-of-ruin Monte Carlo against closed forms and its own rules."""

import math

import numpy as np
import pytest

from kakashi_tui.core.ruin import RuinSpec, RuinTrade, blocks_of, sample_paths, simulate, yes_intervals


def even_money(p: float, ticker: str = "G") -> RuinTrade:
    # a $1 stake at $0.50 a contract, no fee: wins $1 or loses $1
    return RuinTrade(ticker, "yes", stake=1.0, stake_frac=0.01, win_mult=1.0, p_hat=p, market=0.5)


def gamblers_ruin(p: float, i: int, n: int) -> float:
    """P(hitting 0 before n from i), +-1 steps won with probability p (Feller, XIV.2)."""
    q = 1 - p
    if p == q:
        return 1 - i / n
    r = q / p
    return (r**i - r**n) / (1 - r**n)


@pytest.mark.parametrize("p", [0.45, 0.5, 0.55])
def test_fixed_odds_bettor_ruin_matches_the_closed_form(p):
    # i = 5 dollars, absorbing at 0 (below the smallest stake, $1) and at N = 10; 300 steps
    # leave a path unabsorbed with probability far below the Monte Carlo error.
    spec = RuinSpec(
        n_trades=300,
        paths=10_000,
        seed=11,
        start_equity=5.0,
        max_loss_frac=None,
        daily_cap_frac=None,
        sizing="fixed",
        target=10.0,
    )
    res = simulate([even_money(p)], spec)
    got = res.cases[0].p_ruin
    want = gamblers_ruin(p, 5, 10)
    assert res.ruin_floor == 1.0
    assert abs(got.p - want) < 4 * got.se, (got, want)
    assert got.se == pytest.approx(math.sqrt(want * (1 - want) / 10_000), rel=0.05)
    # the sceptical case draws at the market's 0.5: the fair game's 1 - i/N
    fair = res.cases[1].p_ruin
    assert abs(fair.p - 0.5) < 4 * fair.se


def test_a_mutually_exclusive_event_never_gives_two_yes():
    trades = [
        RuinTrade(f"EV-{k}", "yes", 1.0, 0.01, 1.0, p_hat=p, market=p) for k, p in enumerate((0.5, 0.4, 0.3, 0.2))
    ] + [RuinTrade("OTHER", "yes", 1.0, 0.01, 1.0, p_hat=0.5, market=0.5)]
    events = {f"EV-{k}": "EV" for k in range(4)}
    blocks = blocks_of(trades, events, frozenset({"EV"}))
    assert sorted(map(len, blocks)) == [1, 4]
    idx, inst = sample_paths(blocks, 50, 400, np.random.default_rng(3))
    u = np.random.default_rng(4).random(int(inst.max()) + 1)[inst]
    lo, hi = yes_intervals(trades, blocks, [t.p_hat for t in trades])
    yes = (u >= lo[idx]) & (u < hi[idx])
    ev = idx < 4
    # every instance of the event block: at most one YES among its markets
    per_inst: dict[int, int] = {}
    for k, y in zip(inst[ev].ravel(), yes[ev].ravel()):
        per_inst[int(k)] = per_inst.get(int(k), 0) + int(y)
    assert per_inst and max(per_inst.values()) == 1
    # the sum 1.4 is scaled to 1: each market YES with p / 1.4
    share = yes[idx == 0].mean()
    assert abs(share - 0.5 / 1.4) < 0.03
    # unknown exclusivity: drawn independently, and the result says so
    res = simulate(trades, RuinSpec(n_trades=20, paths=200, seed=1, start_equity=100.0, events=events))
    assert any("unknown" in n and "independently" in n for n in res.notes)
    assert not simulate(
        trades, RuinSpec(n_trades=20, paths=200, seed=1, start_equity=100.0, events=events, exclusive=frozenset({"EV"}))
    ).notes


def test_same_seed_same_numbers_other_seed_other_numbers():
    trades = [RuinTrade(f"M{k}", "no" if k % 2 else "yes", 9.0, 0.009, 0.6, 0.6, 0.55) for k in range(7)]
    spec = RuinSpec(n_trades=200, paths=2_000, seed=5, start_equity=1_000.0, trades_per_day=10)
    a, b = simulate(trades, spec), simulate(trades, spec)
    for x, y in zip(a.cases, b.cases):
        assert x.p_drawdown == y.p_drawdown and x.p_ruin == y.p_ruin and x.time_to_dd_stop == y.time_to_dd_stop
        assert np.array_equal(x.bands, y.bands) and np.array_equal(x.final, y.final)
    c = simulate(trades, RuinSpec(n_trades=200, paths=2_000, seed=6, start_equity=1_000.0, trades_per_day=10))
    assert not np.array_equal(a.cases[0].final, c.cases[0].final)


def test_the_daily_cap_refuses_what_would_breach_it_and_the_drawdown_stop_halts():
    # a sure loser risking 1% a trade: a day of 10 trades takes 3 losses (2.97%), then the gate
    # refuses the 4th (headroom), every day
    loser = RuinTrade("L", "yes", 10.0, 0.01, 1.0, p_hat=0.0, market=0.0)
    spec = RuinSpec(n_trades=40, paths=10, seed=1, start_equity=1_000.0, trades_per_day=10)
    res = simulate([loser], spec).cases[0]
    assert res.p_daily_stop.p == 1.0
    assert res.final[0] == pytest.approx(0.99**12)  # 4 days x 3 losses
    assert res.p_drawdown[0.10].p == 1.0 and res.p_drawdown[0.20].p == 0.0
    assert res.time_to_dd_stop == (32.0, 32.0, 32.0)  # the 11th loss (the 4th day's 2nd trade): 1 - 0.99^11 >= 10%
    halt = RuinSpec(n_trades=40, paths=10, seed=1, start_equity=1_000.0, trades_per_day=10, halt_at_drawdown_stop=True)
    halted = simulate([loser], halt).cases[0]
    assert halted.final[0] == pytest.approx(0.99**11)
    # per-trade cap: a recorded 5% stake is cut to the configured 1%
    big = RuinTrade("B", "yes", 50.0, 0.05, 1.0, p_hat=0.0, market=0.0)
    one = simulate([big], RuinSpec(n_trades=1, paths=3, seed=1, start_equity=1_000.0)).cases[0]
    assert one.final[0] == pytest.approx(0.99)


def test_bad_specs_are_refused():
    with pytest.raises(ValueError):
        simulate([], RuinSpec(n_trades=1, paths=1, seed=1, start_equity=1.0))
    with pytest.raises(ValueError):
        simulate([even_money(0.5)], RuinSpec(n_trades=0, paths=1, seed=1, start_equity=1.0))
