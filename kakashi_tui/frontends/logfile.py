"""The operator's log file: one line per tick summary, decision, command, alert and error.

Lines are made for ``grep`` and ``tail -f``: a UTC timestamp, a fixed-width category, then
``key=value``-ish free text, never spanning lines (a traceback is folded into one line with
`` | ``). The file rotates by size. Nothing here writes to the terminal: under Textual the
screen belongs to the desk.

    2026-11-26T10:41:02.123Z TICK     tick 40 2026-01-05T00:40:00Z | saved 8 rejected 0 | ...
    2026-11-26T10:41:02.125Z DECISION KXHIGHNY-26NOV27-T45 YES x3 @<=0.41 EV +0.05 rejected: stale quote
    2026-11-26T10:41:05.004Z COMMAND  pause
    2026-11-26T10:41:09.870Z ALERT    feed down: HTTP 503 on GET /markets
"""

from __future__ import annotations

import logging
import os
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from kakashi_tui.adapters.crashlog import owner_only

LOGGER = "kakashi.file"
CATEGORIES = ("TICK", "DECISION", "COMMAND", "ALERT", "EVENT", "ERROR", "REPORT")
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 5


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"
        cat = getattr(record, "category", "EVENT")
        text = record.getMessage()
        if record.exc_info:
            text += " | " + self.formatException(record.exc_info)
        text = " | ".join(part.strip() for part in text.splitlines() if part.strip())
        return f"{stamp} {cat:<8} {text}"


def default_log_path(db_path: str | os.PathLike) -> Path:
    """``kakashi.log`` beside the database."""
    return Path(db_path).resolve().parent / "kakashi.log"


class OperatorLog:
    """A rotating log file. ``write(category, text)`` never raises: a full disk must not stop trading."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.logger = logging.getLogger(f"{LOGGER}.{id(self)}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False  # never to the root logger (and so never to the terminal)
        self._handler = RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=False
        )
        self._handler.setFormatter(_Formatter())
        self.logger.addHandler(self._handler)
        owner_only(self.path)  # the operator's alone, like the database (rotated files inherit the umask: 077)
        self.failed = False

    def write(self, category: str, text: str, exc: BaseException | None = None) -> None:
        try:
            exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
            self.logger.info(text, extra={"category": category.upper()}, exc_info=exc_info)
        except Exception:  # logging must never take the desk down
            self.failed = True

    def tick(self, line: str) -> None:
        self.write("TICK", line)

    def decision(self, d, threshold=None) -> None:
        """One decision; its EV with the digits that decide against the edge ``threshold``."""
        from kakashi_tui.frontends.fmt import dollars, fmt_ev, fmt_price

        verdict = "accepted" if d.accepted else f"rejected: {dollars(d.reason)}"
        if d.accepted and d.reason != "accepted":
            verdict += f" ({d.reason})"
        self.write(
            "DECISION",
            f"{d.ticker} {d.side.value.upper()} x{d.contracts} @<={fmt_price(d.limit_price)} "
            f"EV {fmt_ev(d.ev_per_contract, threshold)} {verdict}",
        )

    def command(self, text: str) -> None:
        self.write("COMMAND", text)

    def alert(self, text: str) -> None:
        self.write("ALERT", text)

    def error(self, text: str, exc: BaseException | None = None) -> None:
        self.write("ERROR", text, exc)

    def close(self) -> None:
        self.logger.removeHandler(self._handler)
        self._handler.close()


class NullLog(OperatorLog):
    """No file (tests, or a log turned off): same calls, nothing written."""

    def __init__(self) -> None:  # noqa: D107 - deliberately no file
        self.path = Path(os.devnull)
        self.failed = False

    def write(self, category: str, text: str, exc: BaseException | None = None) -> None:
        return None

    def close(self) -> None:
        return None
