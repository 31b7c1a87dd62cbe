"""What an operator can ask of the running engine: small immutable values.

Front-ends put them on the trading service's queue (``TradingService.submit``); other
processes write the same kinds as request rows (``kakashi kill/pause/resume``). The engine
applies them in order at the top of a tick, inside that tick's transaction, and records each as
a ``CommandRecord`` (``record_of``) for the catalog's ``commands``; a replay makes them again
(``from_record``) and applies them where the run did (rules.md, "Replay").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from kakashi_tui.adapters.source import CommandRecord


@dataclass(frozen=True, slots=True)
class Pause:
    origin: str = "desk"


@dataclass(frozen=True, slots=True)
class Resume:
    origin: str = "desk"


@dataclass(frozen=True, slots=True)
class Kill:
    reason: str = "operator"


@dataclass(frozen=True, slots=True)
class Rearm:
    origin: str = "desk"


@dataclass(frozen=True, slots=True)
class Flatten:
    origin: str = "desk"


@dataclass(frozen=True, slots=True)
class SetEstimate:
    ticker: str
    p_hat: Decimal


@dataclass(frozen=True, slots=True)
class ReloadBeliefs:
    origin: str = "desk"


@dataclass(frozen=True, slots=True)
class Quit:
    origin: str = "desk"


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel one live paper order (the desk's ``c``): in force ``cancel_latency_ms`` after it
    is applied, as the kill switch's cancels are; the order can fill until then."""

    order_id: str


Command = Pause | Resume | Kill | Rearm | Flatten | SetEstimate | ReloadBeliefs | Quit | CancelOrder

#: Each command's kind as the catalog records it (``commands`` table, data_schema.md).
KINDS: dict[type, str] = {
    Kill: "kill",
    Pause: "pause",
    Resume: "resume",
    Rearm: "rearm",
    Flatten: "flatten",
    SetEstimate: "set_estimate",
    ReloadBeliefs: "reload_beliefs",
    Quit: "quit",
    CancelOrder: "cancel_order",
}


def record_of(cmd: Command, ts: int, tick: int, after_ts: int | None) -> CommandRecord:
    """A command the engine applied at ``ts``, before tick ``tick``'s decisions and after the
    tick at ``after_ts`` (None: the first), as the catalog keeps it."""
    kind = KINDS[type(cmd)]
    if isinstance(cmd, SetEstimate):
        return CommandRecord(ts, tick, after_ts, kind, "", cmd.ticker, cmd.p_hat)
    if isinstance(cmd, CancelOrder):  # (its text is the order's id)
        return CommandRecord(ts, tick, after_ts, kind, cmd.order_id)
    return CommandRecord(ts, tick, after_ts, kind, cmd.reason if isinstance(cmd, Kill) else cmd.origin)


def from_record(rec: CommandRecord) -> Command | None:
    """A recorded command as the engine applies it again (None: a kind this code does not know,
    or a belief without its market or value: skipped)."""
    if rec.kind == "kill":
        return Kill(rec.text)
    if rec.kind == "set_estimate":
        return SetEstimate(rec.ticker, rec.p_hat) if rec.ticker and rec.p_hat is not None else None
    if rec.kind == "cancel_order":
        return CancelOrder(rec.text) if rec.text else None
    make = _BY_ORIGIN.get(rec.kind)
    return None if make is None else make(rec.text)


#: The kinds made from their origin alone.
_BY_ORIGIN: dict[str, Callable[[str], Command]] = {
    "pause": Pause,
    "resume": Resume,
    "rearm": Rearm,
    "flatten": Flatten,
    "reload_beliefs": ReloadBeliefs,
    "quit": Quit,
}

#: Request kinds another process may write (``requests`` table) and the command each becomes.
REQUEST_KINDS = ("kill", "pause", "resume")


def from_request(kind: str, arg: str) -> Command | None:
    """A request row as a command (None for a kind this code does not know: it is skipped)."""
    if kind == "kill":
        return Kill(arg or "external")
    if kind == "pause":
        return Pause(arg or "cli")
    if kind == "resume":
        return Resume(arg or "cli")
    return None
