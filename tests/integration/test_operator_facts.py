"""Issue #19 (9, 10), the engine's side: p̂ only for open markets, and a settlement's correction
said in the tick line that moves its cash."""

from decimal import Decimal as D

from kakashi_tui.adapters.source import FetchBatch
from kakashi_tui.adapters.store.schema import EstimateRow
from kakashi_tui.core.money import fmt_cc
from kakashi_tui.trading.commands import SetEstimate
from kakashi_tui.trading.service import TradingService
from tests.clirun import in_process
from tests.integration.test_engine import NOW, fake_engine, row


def operator_estimates() -> int:
    return EstimateRow.select().where(EstimateRow.source == "operator").count()


def test_p_hat_is_refused_for_a_market_no_longer_open(db_path):
    soon = NOW + 60_000
    batches = [
        FetchBatch(rows=[row("A"), row("B"), row("C", close=soon)]),
        FetchBatch(rows=[row("A", status="closed"), row("B", status="determined", result="no"), row("C", close=soon)]),
    ]
    e = fake_engine(db_path, batches)
    e.tick()
    assert e.set_estimate("A", D("0.6")) is not None  # open: set
    e.source.now = soon
    e.tick()
    assert e.not_open("A", e.source.now_ms()) == "closed"
    assert e.not_open("B", e.source.now_ms()) == "settled"
    assert e.not_open("C", e.source.now_ms()) == "past its close time"
    before = operator_estimates()
    service = TradingService(e)
    tickets = [service.submit(SetEstimate(t, D("0.7"))) for t in "ABC"]
    assert service.apply_pending() == 3
    assert [t.result() for t in tickets] == [None, None, None]  # refused, and said so to the submitter
    assert operator_estimates() == before and "B" not in e.estimates and e.estimates["A"].p_hat == D("0.6")
    assert e.set_estimate("NEW", D("0.5")) is not None  # a market not seen yet: nothing says it closed


# -- post-mortems beside the database -----------------------------------------------------------
def test_report_goes_beside_the_database_not_the_current_folder(capfd, monkeypatch, tmp_path):
    home, elsewhere = tmp_path / "desk", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    db = str(home / "k.db")
    assert in_process(capfd, "run", "--headless", "--ticks", "5", "--db", db).returncode == 0
    monkeypatch.chdir(elsewhere)  # the operator's shell is somewhere else (cli.main reads the cwd)
    p = in_process(capfd, "report", "--no-charts", "--db", db)
    assert p.returncode == 0, p.stderr
    [written] = list((home / "reports").glob("*/postmortem.md"))
    assert p.stdout.strip() == f"post-mortem written to {written}"  # the whole path, beside the log
    assert not (elsewhere / "reports").exists()
    p = in_process(capfd, "report", "--no-charts", "--db", db, "--out", "mine")  # a folder given: there
    assert p.returncode == 0 and list((elsewhere / "mine").glob("*/postmortem.md"))
    cfg = tmp_path / "k.toml"
    cfg.write_text(f'[desk]\nreports_dir = "{tmp_path / "cfg-reports"}"\n')
    p = in_process(capfd, "report", "--no-charts", "--db", db, "--config", str(cfg))
    assert p.returncode == 0 and list((tmp_path / "cfg-reports").glob("*/postmortem.md"))


# -- a settlement's correction in the tick line ---------------------------------------------------
def corrected_engine(db_path):
    batches = [
        FetchBatch(rows=[row()]),
        FetchBatch(rows=[row(status="determined", result="yes")]),
        FetchBatch(rows=[row(status="amended", result="no")]),
        FetchBatch(rows=[row(status="finalized", result="no")]),
    ]
    return fake_engine(db_path, batches, p={"T": 0.60})


def test_a_correction_is_said_in_the_tick_line_that_moves_its_cash(db_path):
    e = corrected_engine(db_path)
    e.tick()
    n = e.account.open_positions()[0].contracts
    paid = e.tick()
    assert paid.settled == 1 and paid.corrections == () and "corrected" not in paid.log_line()
    cash = e.account.cash_cc
    fixed = e.tick()  # amended to NO: what YES was paid is taken back
    assert fixed.settled == 0 and e.account.cash_cc - cash == -10_000 * n
    assert fixed.corrections == (("T", -10_000 * n),)
    line = fixed.log_line()
    assert f"settled 0 corrected 1 (T {fmt_cc(int(-10_000 * n))}) |" in line, line
    assert "corrected" not in e.tick().log_line()  # finalized as amended: nothing moves, nothing said
