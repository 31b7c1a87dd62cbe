"""#21: one retry policy (core/backoff.py) for the HTTP client, the WebSocket, the refused-key
retry and the service's failed-tick retry."""

import random

from kakashi_tui.core.backoff import Backoff


def test_the_wait_doubles_from_first_to_the_cap_and_never_overflows():
    b = Backoff(0.5, 8.0, jitter=False)
    assert [b.delay(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert b.delay(10**9) == 8.0  # a week of failures is still the cap, not an OverflowError


def test_full_jitter_draws_below_the_ceiling_and_a_seed_repeats_it():
    b = Backoff(0.5, 8.0)
    waits = [b.delay(n, random.Random(7)) for n in range(6)]
    assert waits == [b.delay(n, random.Random(7)) for n in range(6)]
    assert all(0 <= w <= b.ceiling(n) for n, w in enumerate(waits))
    spread = {round(b.delay(3, random.Random(s)), 6) for s in range(50)}
    assert len(spread) > 40 and max(spread) <= 4.0  # clients that failed together spread out


def test_every_retry_loop_uses_it():
    import inspect

    from kakashi_tui.adapters.kalshi import client, source, ws
    from kakashi_tui.trading import service

    old_loops = ("backoff_base * 2", "delay * 2", "backoff_s * 2", "1 << min(")  # the four hand-made ones
    for module in (client, source, ws, service):
        text = inspect.getsource(module)
        assert "Backoff(" in text and not any(loop in text for loop in old_loops), module.__name__
