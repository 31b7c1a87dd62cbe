"""Issue #19 (9, 10), the engine's side: p̂ only for open markets, and a settlement's correction
said in the tick line that moves its cash."""

from decimal import Decimal as D

from kakashi_tui.adapters.source import FetchBatch
from kakashi_tui.adapters.store.schema import EstimateRow
from kakashi_tui.trading.commands import SetEstimate
from kakashi_tui.trading.service import TradingService
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
