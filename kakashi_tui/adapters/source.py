"""The adapter contracts (``Source``, ``Estimator``) and what every market-data source hands
the engine: raw rows in Kakashi's units.

Sources convert their wire format (Kalshi cents and dollar strings, the simulator's
state) into plain dicts keyed like ``Market`` and ``QuoteRules`` fields, once, here at the
edge. The engine validates them; a row that fails is rejected with its reason and kept.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kakashi_tui.core.models import Estimate, Quote
from kakashi_tui.core.queue import Print


# -- the tape (issue #23): what happened in the followed markets between two fetches ---------------
@dataclass(frozen=True, slots=True)
class TapeBook:
    """A market's book as it stood from ``ts`` (its receive time): a full ``snapshot`` or one
    made by deltas (``snapshot`` False); ``polled``: fetched by polling, known only at ``ts``."""

    ts: int
    ticker: str
    quote: Quote
    snapshot: bool = True
    polled: bool = False


@dataclass(frozen=True, slots=True)
class TapePrint:
    """A public trade print (``core.queue.Print``; its ``ts`` is its receive time)."""

    ticker: str
    print: Print

    @property
    def ts(self) -> int:
        return self.print.ts


@dataclass(frozen=True, slots=True)
class TapeGap:
    """The feed lost data at ``ts`` (a reconnect, a sequence gap): ``ticker``'s book, or every
    book (None), is unknown until its next full snapshot."""

    ts: int
    ticker: str | None = None


TapeEvent = TapeBook | TapePrint | TapeGap


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


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """An operator's command as the engine applied it (``trading/commands.py``: ``record_of``,
    ``from_record``), as the catalog's ``commands`` table keeps it (data_schema.md) and a replay
    hands it back (``FetchBatch.commands``).

    ``ts``: the engine's time it was applied with (its events, fills and belief carry it);
    ``tick``: the tick whose decisions it came before (1 = the database's first);
    ``after_ts``: the time of the last tick completed before it (None: none yet): a replay
    applies it at the top of the first tick later than that, before the tick's decisions.
    """

    ts: int
    tick: int
    after_ts: int | None
    kind: str  # kill | pause | resume | rearm | flatten | set_estimate | reload_beliefs | quit | cancel_order
    text: str = ""  # a kill's reason; cancel_order's order id; the others' origin (desk, cli, ...)
    ticker: str = ""  # set_estimate's market
    p_hat: Decimal | None = None  # set_estimate's belief, exact


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
    # The source's clock when the fetch ended (``Source.now_ms``): the tick's time, which the
    # engine decides at and the catalog records as the rows' receive time, read once so a replay
    # plays the rows, beliefs and market changes of a tick at the tick that took them (#22).
    # None: the engine reads the source's clock itself.
    now_ms: int | None = None
    # Exchange shards not trading (Kalshi ``GET /exchange/status``), when the source read them:
    # their markets' decisions are paused (risk_limits.md 3a); None: not known this fetch (kept)
    halted_shards: frozenset[int] | None = None
    # Markets the source still follows whose quote did not change since the row it last handed
    # over (issue #22, item 10): not sent again as rows, so a tick's work grows with what changed.
    # The engine decides on each from its own latest quote (``Engine.quotes``), which keeps its
    # time, so the stale-quote guard still sees how old it is; after the rows, in this order.
    # The catalog records them as one ``seen`` row a tick (data_schema.md).
    same: list[str] = field(default_factory=list)
    # The tape (issue #23): the followed markets' book updates, trade prints and feed gaps since
    # the previous fetch, in receive-time order (ties: exchange time, a print before the book it
    # left), for the markets the engine has live orders or positions in (``Source.watch``)
    # only: what a paper order's fills are judged on. The rows' own books come after it, at the
    # fetch's time; ``polled`` names the markets whose row book this fetch was polled (known
    # only at the fetch: core/queue.py's polled rule), the others' books stand until the next.
    tape: list[TapeEvent] = field(default_factory=list)
    polled: set[str] = field(default_factory=set)
    # A replay's recorded operator commands due before this tick's decisions (the catalog's
    # ``commands``): the engine applies them at the top of the tick, in order, each at its own time.
    commands: list[CommandRecord] = field(default_factory=list)


class Source(ABC):
    """What the engine and the service may ask of a market-data source: every hook, declared
    here once, with a no-op default where a source may have nothing to do. An adapter
    subclasses it and implements ``now_ms`` and ``fetch``; nothing else is probed for, and
    nothing is assigned to a source after it is made (ARCHITECTURE.md, "Adapter contracts").

    - ``now_ms``: the source's clock (the exchange's wall time, or a simulation's).
    - ``fetch``: one pass over the market data, converted to raw rows (never raises for a feed
      problem: it goes in ``FetchBatch.errors``).
    - ``watch``: the engine hands over, once, at its construction, the function that names the
      markets it holds; a source keeps those fetched (a held market must reach settlement).
    - ``stop``: wake a fetch in progress (shutdown: a retry or back-off wait ends at once).
    - ``flush``: hand over what the feed still holds (a recorder calls it as it closes).
    - ``close``: release connections and threads.
    - ``checkpoint``: the control keys (``store.Control`` names) and their stored text a restart
      resumes from (the simulator's position).
    - ``feed_status``: (kind, detail) for the desk: simulated | polling | replay | websocket.
    - ``round_trip_ms``: the median of this run's measured request round trips (ms), where the
      source measures them (Kalshi's client; a replay: the recorded one); None where it has
      none (the simulator). ``[fills] insert_latency_ms = "auto"`` reads it (issue #23).
    - ``commands_applied``: the operator's commands the engine applied, once their transaction
      committed, in order (a recorder writes them to the catalog's ``commands``).
    """

    name: str = ""

    @abstractmethod
    def now_ms(self) -> int: ...

    @abstractmethod
    def fetch(self) -> FetchBatch: ...

    def watch(self, held: Callable[[], Iterable[str]]) -> None:
        return None

    def stop(self) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def checkpoint(self) -> dict[str, str]:
        return {}

    def feed_status(self) -> tuple[str, str]:
        return FEED_KINDS.get(self.name, self.name), ""

    def round_trip_ms(self) -> int | None:
        return None

    def commands_applied(self, commands: list[CommandRecord]) -> None:
        return None


#: A source's feed kind by its name (``Source.feed_status``'s default).
FEED_KINDS = {"sim": "simulated", "kalshi": "polling", "replay": "replay"}


class Estimator(ABC):
    """What the engine may ask of a source of beliefs (p_hat): every hook declared here.

    - ``estimates``: the beliefs for these markets now.
    - ``reload``: re-read its input if it changed (the operator's ``ReloadBeliefs``); whether
      anything changed.
    - ``take_said``: lines the operator should hear since the last call (a re-read's summary,
      refused lines); the engine passes them on after each tick.
    """

    @abstractmethod
    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]: ...

    def reload(self) -> bool:
        return False

    def take_said(self) -> list[str]:
        return []
