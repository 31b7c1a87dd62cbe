"""One marking rule (#21): ``ledger.mark_cc`` marks every open position, wherever a figure is
made of marks: the engine's equity (ticks, caps), ``kakashi status`` and the report. Swapping
the rule alone moves all of them."""

from __future__ import annotations

from kakashi_tui.adapters.queries import connect_readonly, marked_equity_cc, read_status
from kakashi_tui.core import ledger
from kakashi_tui.frontends.report.postmortem import gather
from tests.conftest import make_engine


def test_every_equity_marks_through_the_one_rule(tmp_path, monkeypatch):
    db = tmp_path / "k.db"
    e = make_engine(db)
    for _ in range(30):  # positions open
        e.tick()
    held = e.account.open_positions()
    assert held
    cash = e.account.cash_cc
    real = e.equity()
    e.store.close()
    con = connect_readonly(db)
    try:
        status_real = read_status(con, db).equity_cc
    finally:
        con.close()
    assert gather(db).end_equity == status_real  # the report's end and status mark alike

    calls: list[tuple[str, object]] = []

    def one_cc_each(side, contracts, quote, terms=None, now_ms=0):  # a stand-in rule: 1 cc a position
        calls.append((side, contracts))
        return 1

    monkeypatch.setattr(ledger, "mark_cc", one_cc_each)
    want = cash + len(held)
    assert ledger.equity_cc(e.account, e.quotes, e.fee_terms, 0) == want  # the engine's equity
    assert ledger.equity_cc(e.account, e.quotes, e.fee_terms, 0, memo={}) == want  # (its kept marks)
    con = connect_readonly(db)
    try:
        assert read_status(con, db).equity_cc == want  # kakashi status
        assert marked_equity_cc(con, read_status(con, db).account) == want
    finally:
        con.close()
    assert gather(db).end_equity == want  # the report
    assert {(p.side, p.contracts) for p in held} <= set(calls)
    assert real != want  # (the stand-in is not the rule)
