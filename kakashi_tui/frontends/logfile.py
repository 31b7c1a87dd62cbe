"""The operator's log file: one line per tick summary, decision, fill, settlement, command,
state change, alert and error, from the desk and from a headless run alike (journal.py).

Lines are made for ``grep`` and ``tail -f``: a UTC timestamp, a fixed-width category, the run
(``run=`` a random id per start, ``db=`` the database's file name: several desks in one folder
share one log), then free text, never spanning lines (a traceback is folded into one line with
`` | ``). Outside text in a line (a kill reason, a server's message, a file name) cannot forge
another line or act on a terminal that ``tail``s the file: a line break, an escape or any other
control character in it is written as a visible escape (core/text.py). A rejection that
repeats is written in full the first time in each window (``REPEAT_WINDOW_S``), then counted:
one ``repeated N times`` line closes the window. The file
rotates by size (sized for a week at 1,000 markets: README "The log"). Nothing here writes to
the terminal: under Textual the screen belongs to the desk.

    2026-11-26T10:41:02.123Z TICK     run=3f9a1c02 db=k.db tick 40 2026-01-05T00:40:00Z | saved 8 ...
    2026-11-26T10:41:02.125Z DECISION run=3f9a1c02 db=k.db KXHIGHNY-26NOV27-T45 YES x3 @<=0.41 ...
    2026-11-26T10:41:02.126Z FILL     run=3f9a1c02 db=k.db fill 12 buy KXHIGHNY-26NOV27-T45 YES x3 ...
    2026-11-26T10:41:05.004Z STATE    run=3f9a1c02 db=k.db RUNNING -> PAUSED
    2026-11-26T10:41:09.870Z ALERT    run=3f9a1c02 db=k.db feed down: HTTP 503 on GET /markets
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path

from kakashi_tui.adapters.crashlog import owner_only
from kakashi_tui.adapters.userfiles import kind_of
from kakashi_tui.core.text import safe_text

LOGGER = "kakashi.file"
CATEGORIES = ("TICK", "DECISION", "FILL", "SETTLE", "STATE", "COMMAND", "ALERT", "EVENT", "ERROR", "REPORT")
MAX_BYTES = 128 * 1024 * 1024  # x (BACKUPS + 1) files: a week at 1,000 markets (README "The log")
BACKUPS = 7
MAX_LINE = 4000  # characters of one entry's text (its traceback apart)
REPEAT_WINDOW_S = 3600.0  # a repeating rejection: in full once per window, then counted
#: At most this many windows open at once (the oldest closes early, its count written): an hour of
#: 1,000 markets turning over every few minutes opens hundreds of thousands (~400 B each).
MAX_REPEAT_WINDOWS = 20_000
_DIGITS = re.compile(r"[-+]?\d[\d.,:]*")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"
        cat = getattr(record, "category", "EVENT")
        run = getattr(record, "run", "")
        text = safe_text(record.getMessage(), MAX_LINE)  # a line break in it is shown, never obeyed
        if record.exc_info:  # the traceback's own lines folded with " | ", each escaped
            tb = self.formatException(record.exc_info)
            text += "".join(f" | {safe_text(part.strip(), None)}" for part in tb.splitlines() if part.strip())
        return f"{stamp} {safe_text(cat, 8):<8} {run}{text}"


def default_log_path(db_path: str | os.PathLike) -> Path:
    """``kakashi.log`` beside the database."""
    return Path(db_path).resolve().parent / "kakashi.log"


def _refuse_pipe(path: Path) -> None:
    """A named pipe or socket at the log's path is refused (OSError) before it is opened: opening
    a pipe for writing waits for a reader, forever. A device (``/dev/null``) is a fine log."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise OSError(errno.EINVAL, f"cannot write a log into {kind_of(mode)}", str(path))


class OperatorLog:
    """A rotating log file. ``write(category, text)`` never raises: a full disk must not stop trading."""

    def __init__(
        self,
        path: str | os.PathLike,
        max_bytes: int = MAX_BYTES,
        backups: int = BACKUPS,
        run_id: str | None = None,
        db: str | os.PathLike | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id if run_id is not None else secrets.token_hex(4)  # this process's run
        self.run = f"run={self.run_id} " + (f"db={safe_text(Path(db).name, 80)} " if db is not None else "")
        self._clock = clock
        self._repeats: dict[tuple[str, ...], list] = {}  # shape -> [times since the full line, first shown, line]
        self._repeat_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _refuse_pipe(self.path)
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
            self.logger.info(text, extra={"category": category.upper(), "run": self.run}, exc_info=exc_info)
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
        line = (
            f"{d.ticker} {d.side.value.upper()} x{d.contracts} @<={fmt_price(d.limit_price)} "
            f"EV {fmt_ev(d.ev_per_contract, threshold)} {verdict}"
        )
        if d.accepted:
            self.write("DECISION", line)
        else:
            self.repeating("DECISION", (d.ticker, d.side.value, _DIGITS.sub("#", d.reason)), line)

    def repeating(self, category: str, shape: tuple[str, ...], line: str) -> None:
        """A line that may repeat every tick (a rejection): in full the first time in a window,
        then only counted; the window's count is written when it closes (``flush_repeats``,
        called on every write of this kind and at close)."""
        now = self._clock()
        with self._repeat_lock:
            self._close_windows(now)
            seen = self._repeats.get((category, *shape))
            if seen is not None:
                seen[0] += 1
                return
            while len(self._repeats) >= MAX_REPEAT_WINDOWS:  # the oldest closes early: its count now
                self._close_oldest(now)
            self._repeats[(category, *shape)] = [0, now, line]
        self.write(category, line)

    def _close_windows(self, now: float, everything: bool = False) -> None:
        """Close the windows that are over. They are kept in the order they opened (a closed one
        is removed; it opens again at the end), so the look stops at the first still open: a
        call costs the windows it closes, not every open one (at 1,000 markets turning over,
        tens of thousands are open in an hour, and this runs for every rejection)."""
        while self._repeats:
            first = self._repeats[next(iter(self._repeats))][1]
            if not everything and now - first < REPEAT_WINDOW_S:
                return
            self._close_oldest(now)

    def _close_oldest(self, now: float) -> None:
        key = next(iter(self._repeats))
        n, first, line = self._repeats.pop(key)
        if n:
            self.write(key[0], f"repeated {n} times in {_span(now - first)}: {line}")

    def flush_repeats(self) -> None:
        with self._repeat_lock:
            self._close_windows(self._clock(), everything=True)

    def command(self, text: str) -> None:
        self.write("COMMAND", text)

    def alert(self, text: str) -> None:
        self.write("ALERT", text)

    def error(self, text: str, exc: BaseException | None = None) -> None:
        self.write("ERROR", text, exc)

    def close(self) -> None:
        self.flush_repeats()
        self.logger.removeHandler(self._handler)
        self._handler.close()


def _span(seconds: float) -> str:
    m = int(seconds // 60)
    return f"{m} min" if m else f"{int(seconds)} s"


class NullLog(OperatorLog):
    """No file (tests, or a log turned off): same calls, nothing written."""

    def __init__(self) -> None:  # noqa: D107 - deliberately no file
        self.path = Path(os.devnull)
        self.failed = False

    def write(self, category: str, text: str, exc: BaseException | None = None) -> None:
        return None

    def repeating(self, category: str, shape: tuple[str, ...], line: str) -> None:
        return None

    def flush_repeats(self) -> None:
        return None

    def close(self) -> None:
        return None
