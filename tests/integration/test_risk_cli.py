"""``kakashi risk`` end to end: a short headless simulator run, then the odds of ruin from its DB."""

import pytest

from tests.clirun import in_process, kakashi, main_code
from tests.integration.test_cli import assert_one_line_error


@pytest.fixture(scope="module")
def sim_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("risk") / "k.db"
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
