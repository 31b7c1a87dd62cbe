"""``kakashi risk`` end to end: a short headless simulator run, then the odds of ruin from its DB."""

import shutil

import pytest

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.adapters.store.writer import Store
from tests.clirun import in_process, kakashi, main_code
from tests.conftest import SIM_START_MS
from tests.integration.test_cli import assert_one_line_error


@pytest.fixture(scope="module")
def sim_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("risk") / "k.db"
    # the simulated clock pinned (a database resumes its own): started at the wall clock, a run
    # that crossed UTC midnight had other days, other daily stops and other odds (seen at 21:35)
    store = Store(db)
    store.set_controls({Control.SIM_START_MS: SIM_START_MS})
    store.close()
    assert main_code("run", "--headless", "--ticks", "200", "--no-record", "--db", str(db)) == 0
    return db


def test_risk_prints_both_cases_repeatably_under_the_seed(capfd, sim_db):
    args = ("risk", "--db", str(sim_db), "--trades", "60", "--paths", "500", "--seed", "3")
    a, b = kakashi(*args), in_process(capfd, *args)  # a process of its own and this one: the same
    assert a.returncode == 0 and not a.stderr, a.stderr
    assert a.stdout == b.stdout  # the seed fixes every number
    out = a.stdout
    assert "optimistic (p̂)" in out and "sceptical (market)" in out
    for what in ("P(drawdown >= 5.0%)", "P(drawdown >= 20.0%)", "P(daily stop)", "P(ruin)", "trades to the drawdown"):
        assert what in out
    assert "500 paths x 60 trades, seed 3" in out
    # each simulated market is its own event (since #24's scoring), so no event's exclusivity is in
    # question here; tests/unit/test_ruin.py covers events of several markets, known or not
    assert "unknown" not in out
    c = in_process(capfd, "risk", "--db", str(sim_db), "--trades", "60", "--paths", "500", "--seed", "4")
    assert c.returncode == 0 and c.stdout != out


@pytest.mark.parametrize(
    "extra",
    [("--trades", "0"), ("--paths", "many"), ("--paths", "5"), ("--seed", "-1"), ("--floor", "100")],
)
def test_bad_arguments_are_one_line_exit_2(capfd, extra, tmp_path):
    assert_one_line_error(in_process(capfd, "risk", "--db", str(tmp_path / "k.db"), *extra), 2)


def test_a_missing_database_or_one_without_trades_is_one_line(capfd, tmp_path):
    assert_one_line_error(in_process(capfd, "risk", "--db", str(tmp_path / "none.db")), 2)
    db = tmp_path / "empty.db"
    assert in_process(capfd, "snapshot", "--db", str(db)).returncode == 0  # markets stored, nothing traded
    p = in_process(capfd, "risk", "--db", str(db))
    assert_one_line_error(p, 1)
    assert "no filled trades" in p.stderr


def test_the_post_mortem_has_the_odds_of_ruin_and_its_charts(capfd, sim_db, tmp_path):
    p = in_process(capfd, "report", "--db", str(sim_db), "--out", str(tmp_path / "rep"))
    assert p.returncode == 0, p.stderr
    folder = next((tmp_path / "rep").iterdir())
    md = (folder / "postmortem.md").read_text()
    assert "\n\n## Odds of ruin (Monte Carlo)\n" in md and "| P(ruin) |" in md and "seed 20260124" in md
    # with the other results, after the stops that happened; Methods after every result
    order = ["## Kill-switch and daily-stop events", "## Odds of ruin", "## Verdict", "## Methods", "## What to change"]
    assert [md.index(h) for h in order] == sorted(md.index(h) for h in order)
    assert md.count("## Odds of ruin") == 1 and md.rstrip().endswith("_(operator)_")
    for png in ("ruin_fan.png", "ruin_drawdown.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"![{png}]({png})" in md


def _copy_with(sim_db, tmp_path, **controls):
    """A copy of the run's database (its WAL and ledger head too), its controls set as an engine sets them."""
    folder = tmp_path / "copy"
    shutil.copytree(sim_db.parent, folder)
    db = folder / sim_db.name
    s = Store(db)
    try:
        with s.atomic():
            if "kill" in controls:
                s.set_kill_switch(True, controls.pop("kill"), 0)
            s.set_controls({Control(k): v for k, v in controls.items()})
    finally:
        s.close()
    return db


RISK = ("--trades", "40", "--paths", "300", "--seed", "3")


def test_a_run_halted_by_the_drawdown_stop_says_the_figures_are_for_after_a_re_arm(capfd, sim_db, tmp_path):
    why = "drawdown stop: equity $900.00 is 10.00% below its peak $1,000.00"
    db = _copy_with(sim_db, tmp_path, drawdown_stop=why, peak_equity=10_000_000_000)
    p = in_process(capfd, "risk", "--db", str(db), *RISK)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    said = out.index(f"Halted now ({why}): the run takes no trade until the operator re-arms")
    assert said < out.index("P(ruin)")  # before the figures, not under them
    assert "These figures are for trading after a re-arm, not for the run as it stands: a re-arm restarts " in out
    assert "measured from the run's peak" not in out  # the peak restarts at the re-arm: today's equity
    md = ruin_markdown(db)
    assert f"Halted now ({why})" in md and md.index("Halted now") < md.index("| P(ruin) |")


def test_a_killed_run_keeps_its_peak_after_a_re_arm(capfd, sim_db, tmp_path):
    base = in_process(capfd, "risk", "--db", str(sim_db), *RISK).stdout
    db = _copy_with(sim_db, tmp_path, kill="test", peak_equity=round(eq_of(sim_db) * 1.05))
    out = in_process(capfd, "risk", "--db", str(db), *RISK).stdout
    assert "Halted now: the kill switch is thrown (test); the run takes no trade until the operator re-arms." in out
    assert "Drawdowns are measured from the run's peak" in out and "4.8% below it now" in out
    assert "Halted now" not in base

    def stop(text):
        return float(next(ln for ln in text.splitlines() if ln.startswith("P(drawdown stop")).split()[3][:-1])

    assert stop(out) > stop(base)  # nearer the stop (the run's own peak is nearer its equity): reached more often


def eq_of(db):
    con = queries.connect_readonly(db)
    try:
        return queries.read_status(con, db).equity_cc
    finally:
        con.close()


def ruin_markdown(db):
    from kakashi_tui.core.risk import RiskLimits
    from kakashi_tui.core.ruin import simulate
    from kakashi_tui.frontends.report import ruin

    inputs = ruin.load_inputs(db)
    spec = ruin.spec_for(inputs, RiskLimits(), n_trades=20, paths=200)
    return "\n".join(ruin.markdown_lines(simulate(inputs.trades, spec), inputs))
