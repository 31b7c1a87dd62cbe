"""What an operator can ask of the running engine: small immutable values.

Front-ends put them on the trading service's queue (``TradingService.submit``); other
processes write the same kinds as request rows (``kakashi kill/pause/resume``). The engine
applies them in order at the top of a tick, inside that tick's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


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


Command = Pause | Resume | Kill | Rearm | Flatten | SetEstimate | ReloadBeliefs | Quit

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
