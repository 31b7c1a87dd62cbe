"""Issue #19, "A week, sized" (memory): what a long run at 1,000 markets keeps, and what each
tick costs as it goes on, stays bounded (benchmarks/soak.py measures the whole process)."""

from __future__ import annotations

from kakashi_tui.frontends.logfile import REPEAT_WINDOW_S, OperatorLog


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
    assert _Touches.touched <= 2 * 10 + 3
    log.close()
    lines = (tmp_path / "k.log").read_text().splitlines()
    assert sum("repeated 1 times in 60 min: M0 YES rejected: edge" in ln for ln in lines) == 1
    assert sum(ln.endswith("M1 YES rejected: edge again") for ln in lines) == 1  # a new window: in full
    assert len([ln for ln in lines if "rejected: edge" in ln and "repeated" not in ln]) == 5_001
