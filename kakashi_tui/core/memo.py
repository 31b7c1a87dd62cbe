"""The one bounded-cache helper, and every module-level cache's bound, in one place.

A ``Memo`` is a dict (a hit is a plain ``get`` or ``[]``, at C speed: these sit on the hottest
paths, the tick's and the replay's) that empties itself when a ``put`` finds it full: the
working set of a run (a market's prices, fee terms, book levels) refills it at once, and a long
run of varied inputs can never grow it without bound. Clearing whole, rather than evicting the
oldest, keeps a miss at one dict store; the caches hold derived values only, so clearing is
always safe.

| cache (owner)            | bound   | holds                                                         |
|--------------------------|---------|---------------------------------------------------------------|
| money.counts             | 8,192   | hundredths -> the count's Decimal                             |
| money.hundredths         | 8,192   | a count's Decimal -> hundredths                               |
| fees.unit_fee            | 1,024   | fee terms (by identity) -> integer fee coefficients           |
| ev.units                 | 4,096   | (p_hat, threshold) -> integer EV units                        |
| strategy.clearing        | 4,096   | (p_hat, threshold, fee) -> the highest asks that can clear    |
| strategy.priced          | 4,096   | a quote's prices, fee and side -> its priced EV (~1 MB)       |
| strategy.posted          | 4,096   | a quote's top, belief and maker's fee -> its post             |
| strategy.maker_fee       | 1,024   | fee terms (by identity) -> the maker's integer fee            |
| columnar.pairs           | 200,000 | (price_cc, qty_hundredths) -> the level's (price, qty) pair   |
| columnar.level_text      | 200,000 | (price_cc, qty_hundredths) -> the level's stored text         |
| columnar.book_text       | 200,000 | a whole depth -> its stored book text                         |

Not here: ``validate``'s price table (every grid price, fixed at import, never grows), the
engine's day-text ``lru_cache`` (the standard library's own bound), and per-object caches that
live and die with their owner (a source's market cache, bounded by its own ``max_markets``).
"""

from __future__ import annotations

from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")

BOUNDS: dict[str, int] = {
    "money.counts": 8_192,
    "money.hundredths": 8_192,
    "fees.unit_fee": 1_024,
    "ev.units": 4_096,
    "strategy.clearing": 4_096,
    "strategy.priced": 4_096,
    "strategy.posted": 4_096,
    "strategy.maker_fee": 1_024,
    "columnar.pairs": 200_000,
    "columnar.level_text": 200_000,
    "columnar.book_text": 200_000,
}

#: every Memo made, by name (tests check each stays within its bound)
MADE: dict[str, Memo[Any, Any]] = {}


class Memo(dict[K, V]):
    """A dict bounded by ``BOUNDS[name]``: ``put`` stores, emptying it first when full."""

    __slots__ = ("name", "bound")

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.bound = BOUNDS[name]
        MADE[name] = self

    def put(self, key: K, value: V) -> V:
        if len(self) >= self.bound:
            self.clear()
        self[key] = value
        return value
