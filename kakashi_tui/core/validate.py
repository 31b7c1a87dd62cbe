"""Turn a source's raw row into validated models, or a reason it was rejected."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from kakashi_tui.core.models import Market, Snapshot, rejection_reason


@dataclass(frozen=True)
class Validated:
    market: Market | None
    snapshot: Snapshot | None
    reason: str | None  # None when the row is good


def validate_row(market: dict, snapshot: dict | None, now_ms: int, known: Market | None = None) -> Validated:
    """``known``: the Market this exact raw market dict validated to before (markets rarely change)."""
    ctx = {"now_ms": now_ms}
    if known is not None:
        m = known
    else:
        try:
            m = Market.model_validate(market, context=ctx)
        except ValidationError as e:
            return Validated(None, None, "market " + rejection_reason(e))
    if snapshot is None:
        return Validated(m, None, None)
    try:
        s = Snapshot.model_validate(snapshot, context=ctx)
    except ValidationError as e:
        return Validated(m, None, "snapshot " + rejection_reason(e))
    if s.ticker != m.ticker:
        return Validated(m, None, f"snapshot ticker {s.ticker} does not match market {m.ticker}")
    return Validated(m, s, None)
