"""What every market-data source hands the engine: raw rows in Kakashi's units.

Sources convert their wire format (Kalshi cents and dollar strings, the simulator's
state) into plain dicts keyed like ``Market`` and ``Snapshot`` fields, once, here at the
edge. The engine validates them; a row that fails is rejected with its reason and kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kakashi_tui.core.models import Quote


@dataclass(slots=True)
class RawRow:
    market: dict[str, Any]
    snapshot: dict[str, Any] | None
    payload: Any  # what the source actually sent, kept verbatim for rejected rows
    reason: str | None = None  # set when the source could not even convert the row
    # optional: ``snapshot`` already made a Quote by a check with exactly the row check's rules
    # (a catalog's vectorised check); the engine takes it instead of checking the row again
    quote: Quote | None = None
    # optional: ``payload`` made on demand, for a row handed over as a ``quote`` alone (no
    # ``snapshot``): a catalog turns a row back into its raw form only if the engine rejects it
    evidence: Callable[[], Any] | None = None

    def raw_payload(self) -> Any:
        """What the source sent, as kept with a rejected row."""
        return self.payload if self.evidence is None else self.evidence()


@dataclass
class FetchBatch:
    rows: list[RawRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the feed failed (timeouts, 5xx, ...): an alarm
    latency_ms: float = 0.0
    # What works but the operator should know: caps that left markets out, a fallback that served
    # (a listing looked up one by one after a 404), one look-up that failed. Logged, never an alarm.
    notes: list[str] = field(default_factory=list)
    # The exchange refused the API key (HTTP 401/403), with its reason, while it stays refused:
    # a key problem, not a feed glitch (the source retries with backoff; it can be fixed live).
    key_refused: str = ""


class Source(Protocol):
    name: str

    def now_ms(self) -> int: ...

    def fetch(self) -> FetchBatch: ...

    def close(self) -> None: ...
