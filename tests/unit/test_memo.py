"""#21: one bounded-cache helper, every module-level cache's bound declared in one place."""

import kakashi_tui.adapters.columnar  # noqa: F401 - (imported for the caches it makes)
import kakashi_tui.core.fees  # noqa: F401
import kakashi_tui.core.money  # noqa: F401
import kakashi_tui.core.strategy  # noqa: F401
from kakashi_tui.core.memo import BOUNDS, MADE, Memo


def test_every_declared_bound_has_its_cache_and_every_cache_its_bound():
    assert set(MADE) == set(BOUNDS)
    assert all(m.bound == BOUNDS[name] for name, m in MADE.items())


def test_a_memo_never_passes_its_bound_and_refills_from_empty():
    BOUNDS["test.tiny"] = 3
    try:
        m: Memo[int, int] = Memo("test.tiny")
        for i in range(10):
            assert m.put(i, i * i) == i * i
            assert len(m) <= 3 and m[i] == i * i  # the newest is always kept
        assert dict(m) == {9: 81}  # emptied at 9, then 9 stored
    finally:
        del BOUNDS["test.tiny"]
        del MADE["test.tiny"]


def test_counts_stay_exact_across_a_clear():
    from decimal import Decimal

    from kakashi_tui.core.money import count_to_hundredths, hundredths_to_count

    for h in range(0, 3 * BOUNDS["money.counts"], 7):  # several clears on the way
        n = hundredths_to_count(h)
        assert n == Decimal(h) / 100 and count_to_hundredths(n) == h
    assert len(MADE["money.counts"]) <= BOUNDS["money.counts"]
