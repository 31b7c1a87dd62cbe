"""A plan registered before the evidence (issue #24, 9): fixed once trading starts (the store
refuses), its kill condition pauses the engine (hand-made ticks and a headless run), success judged
once at the sample, `kakashi plan` as an operator types it, and the post-mortem's grade."""

import sqlite3
from decimal import Decimal as D

import pytest

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.source import FetchBatch
from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.plan import PlanError, parse_condition, parse_sample
from kakashi_tui.frontends.report.plan import plan_lines
from tests.clirun import in_process
from tests.integration.test_engine import NOW, fake_engine, row
from tests.integration.test_special_files import one_error_line


def register(db, sample="2 trades", kill=(), success=("pnl > 0",)) -> int:
    s = Store(db)
    try:
        return s.add_plan(
            created_ms=NOW,
            hypothesis="the fixed beliefs beat the market",
            settings="{}",
            beliefs="fixed (test)",
            sample=parse_sample(sample),
            kill=tuple(parse_condition(k) for k in kill),
            success=tuple(parse_condition(c) for c in success),
        )
    finally:
        s.close()


def plan_row(db):
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        return dict(c.execute("SELECT * FROM plans ORDER BY id DESC LIMIT 1").fetchone())


BELIEFS = {"A": 0.60, "B": 0.60, "C": 0.60}


def two_events(result: str, close_bid: str):
    """Buys A and B (two events), marks them at ``close_bid``, then settles both at ``result``
    while C, with an edge too, waits for a decision in the settling tick."""
    a, b = (dict(event_ticker="EA"), dict(event_ticker="EB"))
    ask = str(D(close_bid) + D("0.02"))
    return [
        FetchBatch(rows=[row("A", **a), row("B", **b)]),
        FetchBatch(rows=[row("A", bid=close_bid, ask=ask, **a), row("B", bid=close_bid, ask=ask, **b)]),
        FetchBatch(
            rows=[
                row("A", status="determined", result=result, **a),
                row("B", status="determined", result=result, **b),
                row("C", event_ticker="EC"),
            ]
        ),
    ]


def test_a_plan_is_fixed_once_trading_starts_on_it_and_a_new_plan_is_a_new_row(db_path):
    pid = register(db_path)
    s = Store(db_path)
    study = dict(
        hypothesis="changed before any trade",
        settings="{}",
        beliefs="b",
        sample=parse_sample("3 trades"),
        kill=(),
        success=(parse_condition("clv > 0"),),
    )
    s.update_plan(pid, **study)  # nothing came after it yet: it may still change
    assert plan_row(db_path)["hypothesis"] == "changed before any trade" and plan_row(db_path)["sample_n"] == 3
    s.close()
    e = fake_engine(db_path, [FetchBatch(rows=[row("A")])], p=BELIEFS)
    assert e.tick().fills == 1
    before = plan_row(db_path)
    with pytest.raises(PlanError, match=r"plan 1 is fixed: trading started on it \(decision 1\)"):
        e.store.update_plan(pid, **{**study, "hypothesis": "rewritten after the evidence"})
    assert plan_row(db_path) == before  # the refusal rolled back: nothing changed
    pid2 = e.store.add_plan(created_ms=NOW, **study)  # a changed plan is a new row
    assert pid2 == 2 and plan_row(db_path)["after_decision_id"] == 1 and plan_row(db_path)["after_fill_id"] == 1
    e.store.update_plan(pid2, **study)  # its own trading has not started
    # the outcome is written once
    assert e.store.record_plan_kill(pid2, NOW, 1, "drawdown > 1%", "drawdown 1.20%")
    assert not e.store.record_plan_kill(pid2, NOW, 2, "drawdown > 1%", "drawdown 9.00%")
    assert not e.store.record_plan_verdict(pid2, NOW, 2, "passed", "x")
    assert plan_row(db_path)["killed_detail"] == "drawdown 1.20%" and plan_row(db_path)["verdict"] is None
    e.store.close()


def test_a_kill_condition_pauses_the_engine_in_the_tick_it_is_met_and_stays_paused(db_path):
    register(db_path, sample="10 trades", kill=("clv_hi95 < 0 after 2 trades",))
    e = fake_engine(db_path, two_events("no", "0.20"), p=BELIEFS)
    assert e.tick().fills == 2
    assert e.tick().fills == 0  # held: marked down
    rep = e.tick()  # A and B settle: two trades, in two events, both bought above the close
    assert rep.settled == 2
    assert rep.decisions == ()  # paused before this tick decided: C waits
    clvs = []
    for ticker in ("A", "B"):
        with sqlite3.connect(db_path) as c:
            value, fee, n = c.execute(
                "SELECT value_cc, fee_cc, contracts_hundredths FROM fills WHERE ticker = ?", (ticker,)
            ).fetchone()
        clvs.append((0.21 - value / 10_000 / (n / 100) - fee / 10_000 / (n / 100)) * 100)  # close mid 0.21
    hi = max(clvs)  # two events: the 97.5% bootstrap quantile of their mean is the larger
    detail = f"clv_hi95 {hi:+.2f}c, trades 2"
    reason = f"plan 1 kill: clv_hi95 < 0 after 2 trades ({detail})"
    assert rep.state == f"PAUSED ({reason})" and e.paused
    assert e.store.control(Control.PAUSED) is True and e.store.control(Control.PAUSE_REASON) == reason
    r = plan_row(db_path)
    assert (r["killed_by"], r["killed_detail"], r["killed_tick"]) == ("clv_hi95 < 0 after 2 trades", detail, 3)
    assert e.store.last_event(("plan_kill",))[1] == f"plan 1: clv_hi95 < 0 after 2 trades ({detail})"
    e.store.close()
    # a restart is still paused, with the reason; the plan is done: no second look
    e2 = fake_engine(db_path, [FetchBatch(rows=[row("C", event_ticker="EC")])] * 2, p=BELIEFS)
    assert e2.state_label() == f"PAUSED ({reason})" and e2.plan_watch is None
    assert e2.tick().decisions == ()
    e2.set_paused(False)  # the operator resumes: the reason goes, the plan stays failed
    assert e2.store.control(Control.PAUSE_REASON) is None and e2.state_label() == "RUNNING"
    assert e2.tick().fills == 1
    assert plan_row(db_path)["killed_tick"] == 3
    e2.store.close()


def test_success_is_judged_once_at_the_sample_and_the_post_mortem_grades_it(db_path):
    register(db_path, sample="2 trades", success=("pnl > 0 and clv > 0",))
    batches = two_events("yes", "0.60")  # A and B close above their price and settle YES: both win
    batches += [FetchBatch(rows=[row("C", bid="0.10", ask="0.12", event_ticker="EC")])]
    batches += [FetchBatch(rows=[row("C", status="determined", result="no", event_ticker="EC")])]
    e = fake_engine(db_path, batches, p=BELIEFS)
    e.tick()
    e.tick()
    assert e.tick().fills == 1  # A and B settle: judged before this tick decides; then C, past the sample
    r = plan_row(db_path)
    assert r["verdict"] == "passed" and r["judged_tick"] == 3 and e.plan_watch is None
    assert r["verdict_detail"].startswith("pnl > 0 and clv > 0: pnl +$")
    assert e.store.last_event(("plan_verdict",))[1].startswith("plan 1: passed (pnl > 0 and clv > 0: pnl +$")
    e.tick()  # C marked down
    assert e.tick().settled == 1  # and settled at a loss
    assert plan_row(db_path)["verdict"] == "passed" and plan_row(db_path)["judged_tick"] == 3  # never again
    e.store.close()
    con = queries.connect_readonly(db_path)
    try:  # the post-mortem's section (its place in the report: tests/integration/test_report.py)
        section = "\n".join(plan_lines(con, None))
        assert queries.plan_settled_count(con, queries.latest_plan(con)) == 3
    finally:
        con.close()
    assert "**PASSED** at its sample of 2 trades" in section and "| success | `pnl > 0 and clv > 0` |" in section
    assert "\n| 3 | " in section  # its numbers now: three settled trades


def test_kakashi_plan_as_an_operator_types_it(capfd, tmp_path):
    db = str(tmp_path / "k.db")
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        'hypothesis = "the oracle beats the market after fees"\nsample = "40 trades"\n'
        'kill = ["clv_hi95 < 0 after 20 trades"]\nsuccess = "pnl_lo95 > 0 and clv_lo95 > 0"\n'
    )
    p = in_process(capfd, "plan", "new", "--db", db, "--file", str(plan_file), "--kill", "drawdown > 8%")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("plan 1 registered: sample 40 trades; 2 kill condition(s)")
    assert "  kill:    clv_hi95 < 0 after 20 trades\n  kill:    drawdown > 8%\n" in p.stdout
    assert "beliefs: sim-oracle (simulated), noise sd 0.03" in p.stdout
    r = plan_row(db)
    assert r["success"] == '["pnl_lo95 > 0 and clv_lo95 > 0"]' and '"edge_threshold": "0.03"' in r["settings"]
    show = in_process(capfd, "plan", "show", "--db", db)
    assert show.returncode == 0 and show.stdout.startswith("plan 1: on track (0 of 40 settled trades)\n")
    assert "now:        trades 0, days n/a, clv n/a" in show.stdout
    listed = in_process(capfd, "plan", "list", "--db", db)
    assert listed.stdout.startswith("plan 1: on track (0 of 40 settled trades) | registered ")
    # bad input: one line, exit 2, nothing stored
    bad = [
        (("--hypothesis", "h", "--sample", "40 trades", "--success", "clv > 0 or pnl > 0"), "'or' is not in"),
        (("--hypothesis", "h", "--sample", "forty trades", "--success", "clv > 0"), "plan: sample 'forty trades'"),
        (("--hypothesis", "h", "--sample", "40 trades"), "at least one success criterion"),
        (("--sample", "40 trades", "--success", "clv > 0"), "a hypothesis is needed"),
        (("--hypothesis", "h", "--sample", "4 trades", "--success", "clv > 0 after 2 trades"), "judged once"),
        (("--hypothesis", "h", "--sample", "4 trades", "--success", "clv > 0", "--beliefs", "b.csv"), "--beliefs"),
    ]
    for args, why in bad:
        assert why in one_error_line(in_process(capfd, "plan", "new", "--db", db, *args)), args
    plan_file.write_text('hypothesis = "h"\nsample = "4 trades"\nsuccess = "clv > 0"\nstop = "never"\n')
    assert "unknown key 'stop'" in one_error_line(
        in_process(capfd, "plan", "new", "--db", db, "--file", str(plan_file))
    )
    assert "no plan 9" in one_error_line(in_process(capfd, "plan", "show", "9", "--db", db))
    assert "plan needs a command" in one_error_line(in_process(capfd, "plan"))
    assert len(queries.plans(sqlite3.connect(db))) == 1
    # an engine running on the database holds its writer lock: the plan waits for it to stop
    holder = Store(db)
    try:
        line = one_error_line(
            in_process(
                capfd, "plan", "new", "--db", db, "--hypothesis", "h", "--sample", "4 trades", "--success", "clv > 0"
            ),
            1,
        )
        assert "an engine is running on" in line
    finally:
        holder.close()


def test_a_headless_run_pauses_on_the_kill_condition_and_status_says_why(capfd, tmp_path):
    db = str(tmp_path / "k.db")
    args = ("--db", db, "--hypothesis", "h", "--sample", "100 trades", "--success", "pnl > 0")
    assert in_process(capfd, "plan", "new", *args, "--kill", "drawdown > 0.5%").returncode == 0
    p = in_process(capfd, "run", "--headless", "--ticks", "60", "--no-record", "--db", db)
    assert p.returncode == 0, p.stderr
    ticks = [ln for ln in p.stdout.splitlines() if ln.startswith("tick ")]
    first = next(i for i, ln in enumerate(ticks) if "| PAUSED (plan 1 kill: drawdown > 0.5% (drawdown " in ln)
    assert 0 < first < 59 and all("PAUSED (plan 1 kill" in ln for ln in ticks[first:])
    assert all(" decisions 0 (0 accepted)" in ln for ln in ticks[first + 1 :])  # no decision while paused
    assert "kakashi: ALERT trading paused: plan 1 kill: drawdown > 0.5%" in p.stderr
    log = (tmp_path / "kakashi.log").read_text()
    assert "RUNNING -> PAUSED (plan 1 kill: drawdown > 0.5%" in log
    st = in_process(capfd, "status", "--db", db)
    assert "| PAUSED (plan 1 kill: drawdown > 0.5% (drawdown " in st.stdout
    assert "\nplan 1: FAILED (kill drawdown > 0.5%: drawdown " in st.stdout


def test_a_pause_whose_tick_rolls_back_is_undone_in_memory_too(db_path):
    register(db_path, sample="10 trades", kill=("days >= 0",))  # met at the plan's first look
    e = fake_engine(db_path, [FetchBatch(rows=[row("A")])] * 2, p=BELIEFS)
    real = e.store.insert_tick

    def broken(**fields):  # the tick fails after the plan paused it: the whole tick rolls back
        e.store.insert_tick = real
        raise RuntimeError("disk gone")

    e.store.insert_tick = broken
    with pytest.raises(RuntimeError):
        e.tick()
    assert not e.paused and e.state_label() == "RUNNING" and e.plan_watch is not None
    assert e.store.control(Control.PAUSED) is None and plan_row(db_path)["killed_ts"] is None
    rep = e.tick()  # the next tick meets it again, and this time it holds
    assert rep.state.startswith("PAUSED (plan 1 kill: days >= 0 (days 0.00, trades 0))") and rep.decisions == ()
    assert plan_row(db_path)["killed_tick"] == 1
    e.store.close()
