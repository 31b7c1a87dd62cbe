"""Issue #19, "A week, sized" (memory): what a long run at 1,000 markets keeps, and what each
tick costs as it goes on, stays bounded (benchmarks/soak.py measures the whole process)."""

from __future__ import annotations

from kakashi_tui.adapters import catalog
from kakashi_tui.adapters.catalog import CatalogWriter, Recorder
from kakashi_tui.core.models import Market, MarketStatus, Result
from kakashi_tui.frontends import logfile
from kakashi_tui.frontends.logfile import REPEAT_WINDOW_S, OperatorLog
from tests.conftest import SIM_START_MS


class _Touches(dict):
    """A dict that counts the entries a caller reads (iterates, looks up, lists)."""

    touched = 0

    def __iter__(self):
        for k in super().__iter__():
            _Touches.touched += 1
            yield k

    def __getitem__(self, key):
        _Touches.touched += 1
        return super().__getitem__(key)

    def items(self):
        _Touches.touched += len(self)
        return super().items()

    def keys(self):
        _Touches.touched += len(self)
        return super().keys()

    def values(self):
        _Touches.touched += len(self)
        return super().values()


def test_a_rejection_costs_the_windows_it_closes_not_every_open_one(tmp_path):
    """At 1,000 markets turning over, tens of thousands of repeat windows are open within the
    hour, and every rejection (about 145 a tick) looked at all of them: ticks slowed as the hour
    went on. Now a call reads the windows it closes and the first one still open."""
    now = [1000.0]
    log = OperatorLog(tmp_path / "k.log", run_id="abcd1234", clock=lambda: now[0])
    log._repeats = _Touches()
    for i in range(5_000):  # 5,000 markets' rejections, each a window of its own, a tick apart
        now[0] += 0.5
        log.repeating("DECISION", (f"M{i}", "yes", "edge"), f"M{i} YES rejected: edge")
    _Touches.touched = 0
    log.repeating("DECISION", ("M0", "yes", "edge"), "M0 YES rejected: edge")  # counted, nothing closes
    assert _Touches.touched <= 3
    now[0] = 1000.0 + REPEAT_WINDOW_S + 0.5 * 10 + 0.25  # the first ten windows are over
    _Touches.touched = 0
    log.repeating("DECISION", ("M1", "yes", "edge"), "M1 YES rejected: edge again")
    assert _Touches.touched <= 4 * 10 + 4
    log.close()
    lines = (tmp_path / "k.log").read_text().splitlines()
    assert sum("repeated 1 times in 60 min: M0 YES rejected: edge" in ln for ln in lines) == 1
    assert sum(ln.endswith("M1 YES rejected: edge again") for ln in lines) == 1  # a new window: in full
    assert len([ln for ln in lines if "rejected: edge" in ln and "repeated" not in ln]) == 5_001


def test_open_repeat_windows_are_bounded_the_oldest_closing_early(tmp_path, monkeypatch):
    monkeypatch.setattr(logfile, "MAX_REPEAT_WINDOWS", 100)
    now = [1000.0]
    log = OperatorLog(tmp_path / "k.log", run_id="abcd1234", clock=lambda: now[0])
    for i in range(150):  # each market rejected twice: a window each, counted once
        now[0] += 1
        for _ in range(2):
            log.repeating("DECISION", (f"M{i}", "yes", "edge"), f"M{i} YES rejected: edge")
    assert len(log._repeats) == 100
    log.close()
    text = (tmp_path / "k.log").read_text()
    assert "repeated 1 times in 1 min: M0 YES rejected: edge" in text  # closed early (100 s), its count kept
    assert text.count("repeated 1 times in ") == 150  # the 50 closed early, then the 100 at close


def _settled(t: str) -> Market:
    return Market(ticker=t, status=MarketStatus.FINALIZED, result=Result.YES, close_ts=SIM_START_MS)


def test_a_recorder_forgets_old_settled_markets_and_keeps_the_live_ones(tmp_path, monkeypatch):
    """A week of the simulator's markets turning over (about 10 settle a tick at 1,000 markets)
    grew the recorder's per-market memory without end; it now keeps the latest settled ones."""
    monkeypatch.setattr(catalog, "SETTLED_KEPT", 50)
    rec = Recorder(CatalogWriter(tmp_path / "cat", roll_s=float("inf")))
    live = Market(ticker="LIVE", status=MarketStatus.ACTIVE, close_ts=SIM_START_MS + 10**9)
    assert rec.market(live, SIM_START_MS) is None
    for i in range(500):
        rec._cache[f"S{i}"] = ({}, _settled(f"S{i}"))  # as record_row leaves it before market()
        rec._beliefs[f"S{i}"] = (None, "x")  # type: ignore[assignment]
        assert rec.market(_settled(f"S{i}"), SIM_START_MS + i) is None
    assert len(rec._markets) == 51 and "LIVE" in rec._markets and "S499" in rec._markets
    assert not rec._cache and not rec._beliefs  # nothing more to validate or believe of a settled one
    rec.market(_settled("S499"), SIM_START_MS + 999)  # re-sent while remembered: not written again
    rec.writer.flush()
    assert rec.writer.rows_written["markets"] == 501
    rec.close()
