"""The operator's beliefs file: ticker -> p_hat, as TOML or CSV.

TOML:   [beliefs]            CSV:  ticker,p_hat
        KXFED-25DEC = 0.62         KXFED-25DEC,0.62

Read line by line: each line is a belief or a refusal with its line number and reason (a
p_hat must be a finite number strictly between 0 and 1; a ticker printable text without
spaces). At start-up any refused line stops Kakashi (``load_beliefs`` and ``BeliefsFile``
raise one ``ConfigError`` naming file:line). The file is re-read when it changes; in a
running engine a refused line never stops anything: the market it names keeps its last good
p_hat, the good lines apply, and ``BeliefsFile.problems`` / ``last_reload`` say which lines
were refused and what changed, for the desk and the log. The engine stores each changed
estimate with a timestamp so later reports can score it.
"""

from __future__ import annotations

import csv
import os
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from kakashi_tui.adapters.source import Estimator
from kakashi_tui.adapters.userfiles import read_regular
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.core.models import Estimate

BELIEFS_SOURCE = "beliefs-file"
MAX_BYTES = 16 * 1024 * 1024  # 200,000 lines of real tickers fit (about 6 MB); anything bigger is a mistake
MAX_TICKER_CHARS = 200
_HEADER = re.compile(r"^\s*\[\s*([^\]]*?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"""^\s*(?:"([^"\\]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=""")  # the ticker of a line that does not parse


@dataclass(frozen=True)
class BeliefProblem:
    """One refused line (``line`` None: the whole file could not be read)."""

    where: str  # the file's path as given
    line: int | None
    ticker: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.reason}" if self.line else f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class ParsedBeliefs:
    beliefs: dict[str, Decimal]
    problems: tuple[BeliefProblem, ...]
    unreadable: bool = False  # the whole file was refused (not read, not text, too big)


@dataclass(frozen=True)
class ReloadResult:
    """What one re-read of the file did, for the desk and the log."""

    changed: tuple[str, ...] = ()  # new or different p_hat, now in force
    removed: tuple[str, ...] = ()  # lines deleted from the file
    kept: tuple[str, ...] = ()  # refused lines whose market keeps its last good p_hat
    refused: tuple[BeliefProblem, ...] = ()

    def summary(self) -> str:
        parts = []
        if self.changed:
            parts.append(f"{len(self.changed)} changed")
        if self.removed:
            parts.append(f"{len(self.removed)} removed")
        if self.refused:
            parts.append(f"{len(self.refused)} refused (first: {self.refused[0]})")
        if self.kept:
            parts.append(f"last good p_hat kept for {', '.join(self.kept[:5])}{' ...' if len(self.kept) > 5 else ''}")
        return "beliefs reloaded: " + ("; ".join(parts) or "no change")


def unmatched_summary(tickers: frozenset[str]) -> str:
    """One line for believed tickers that no market of the feed answers to."""
    names = sorted(tickers)
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"beliefs: no market for {', '.join(names[:5])}{more} (a typo, a market not listed, or one already settled)"


def check_ticker(t: Any) -> str | None:
    """The reason a ticker is refused, or None."""
    if not isinstance(t, str) or not t:
        return "missing ticker"
    if len(t) > MAX_TICKER_CHARS:
        return f"ticker longer than {MAX_TICKER_CHARS} characters"
    if not t.isprintable() or any(c.isspace() for c in t):
        return f"ticker {t.encode('unicode_escape').decode('ascii')[:60]!r} holds spaces or unprintable characters"
    return None


def check_p(raw: Any) -> tuple[Decimal | None, str | None]:
    """(p_hat, None) or (None, reason): a finite number strictly between 0 and 1."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float, Decimal)):
        return None, f"p_hat is not a number: {str(raw)[:40]!r}"
    try:
        p = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        return None, f"p_hat is not a number: {str(raw)[:40]!r}"
    if not p.is_finite():
        return None, f"p_hat must be a finite number, got {str(raw)[:40]}"
    if not (0 < p < 1):
        return None, f"p_hat must be strictly between 0 and 1, got {p}"
    return p, None


def _read_text(path: Path, where: str) -> tuple[str | None, BeliefProblem | None]:
    try:
        data = read_regular(path, MAX_BYTES)  # a pipe or device swapped in: refused, never waited on
    except OSError as e:
        return None, BeliefProblem(where, None, None, f"cannot read beliefs file: {e.strerror}")
    except ValueError as e:  # a NUL in the path
        return None, BeliefProblem(where, None, None, f"cannot read beliefs file: {e}")
    if len(data) > MAX_BYTES:
        return None, BeliefProblem(where, None, None, f"beliefs file is larger than {MAX_BYTES // 2**20} MiB")
    try:
        return data.decode("utf-8-sig"), None  # a leading BOM (Excel's "CSV UTF-8") is not text
    except UnicodeDecodeError as e:
        return None, BeliefProblem(where, None, None, f"beliefs file is not UTF-8 text (byte {e.start})")


def _parse_csv(lines: list[str], where: str, add) -> None:
    for i, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = next(csv.reader([line]), [])
        except csv.Error as e:
            add(i, None, None, f"not 'ticker,p_hat' ({e})")
            continue
        cells = [c.strip() for c in row]
        if i == 1 and [c.lower() for c in cells[:2]] == ["ticker", "p_hat"]:
            continue  # the header
        while cells and not cells[-1]:
            cells.pop()
        if len(cells) != 2:
            add(i, cells[0] if cells else None, None, "expected 'ticker,p_hat'")
            continue
        add(i, cells[0], cells[1], None)


def _parse_toml(lines: list[str], where: str, add) -> None:
    """Line by line (a beliefs file is a table of ``ticker = p_hat``): one bad line is one
    refusal, not a file that no longer parses."""
    has_table = any((m := _HEADER.match(ln)) and m.group(1) == "beliefs" for ln in lines)
    table = ""  # the table the next keys belong to ("" = top level)
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = _HEADER.match(line)
        if m:
            table = m.group(1)
            if table != "beliefs":
                add(i, None, None, f"unexpected table [{table[:40]}]; expected [beliefs] of ticker = p_hat")
            continue
        try:
            doc = tomllib.loads(line)
        except (ValueError, RecursionError) as e:  # TOMLDecodeError; an integer of 5,000 digits; [[[[...
            k = _KEY.match(line)
            ticker = next((g for g in k.groups() if g is not None), None) if k else None
            why = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(" (at ")[0].split(";")[0]
            add(i, ticker, None, f"p_hat is not a number ({why})" if ticker else f"not 'ticker = p_hat' ({why})")
            continue
        if len(doc) != 1:
            add(i, None, None, "expected one 'ticker = p_hat' per line")
            continue
        ((ticker, value),) = doc.items()
        if table != "beliefs" and (table or has_table):
            if table == "" and has_table:
                add(i, ticker, None, "outside the [beliefs] table")
            continue  # a key of an unexpected table: that table was refused already
        if isinstance(value, dict):
            add(i, ticker, None, 'a dotted key is a table; quote the ticker: "A.B" = p_hat')
            continue
        add(i, ticker, value, None)


def parse_beliefs(path: str | os.PathLike[str]) -> ParsedBeliefs:
    """Every line of the file as a belief or a refusal; never raises."""
    path = Path(path)
    where = str(path)
    text, problem = _read_text(path, where)
    if text is None:
        return ParsedBeliefs({}, (problem,) if problem else (), unreadable=True)
    out: dict[str, Decimal] = {}
    first_line: dict[str, int] = {}
    problems: list[BeliefProblem] = []

    def add(line: int, ticker: Any, raw: Any, reason: str | None) -> None:
        """A line's verdict: its belief, or a problem naming the ticker when it is a good one."""
        bad_ticker = check_ticker(ticker)
        if reason is None and bad_ticker is None and ticker in first_line:
            reason = f"already on line {first_line[ticker]}"
        if reason is None and bad_ticker is None:
            p, reason = check_p(raw)
            if p is not None:
                first_line[ticker] = line
                out[ticker] = p
                return
        if bad_ticker is not None:
            problems.append(BeliefProblem(where, line, None, reason or bad_ticker))
        else:
            problems.append(BeliefProblem(where, line, ticker, f"{ticker}: {reason}"))

    lines = text.splitlines()
    (_parse_csv if path.suffix.lower() == ".csv" else _parse_toml)(lines, where, add)
    return ParsedBeliefs(out, tuple(problems))


def _refusal(parsed: ParsedBeliefs) -> ConfigError:
    first = parsed.problems[0]
    more = f" (and {len(parsed.problems) - 1} more refused lines)" if len(parsed.problems) > 1 else ""
    return ConfigError(f"{first}{more}")


def load_beliefs(path: str | os.PathLike[str]) -> dict[str, Decimal]:
    """The file's beliefs; any refused line is a ConfigError naming file:line (start-up)."""
    parsed = parse_beliefs(path)
    if parsed.problems:
        raise _refusal(parsed)
    return parsed.beliefs


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class BeliefsFile(Estimator):
    """An estimator that reads the operator's beliefs, reloading when the file changes.

    Constructing it is the start-up check: any refused line raises ``ConfigError``. After
    that nothing it reads can raise: see ``problems``, ``last_reload`` and ``unmatched``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._sig = _signature(self.path)
        parsed = parse_beliefs(self.path)
        if parsed.problems:
            raise _refusal(parsed)
        self.beliefs: dict[str, Decimal] = dict(parsed.beliefs)
        #: The refused lines of the file as it is now (empty once the operator mends them).
        self.problems: tuple[BeliefProblem, ...] = ()
        #: What the last re-read did (None until the file changes).
        self.last_reload: ReloadResult | None = None
        #: Believed tickers among no market of the last tick (a typo, or a market not listed).
        self.unmatched: frozenset[str] = frozenset()
        self.reloads = 0  # how many times a changed file was read (a view can tell a new result)
        #: What the operator should hear (``take_said``: the engine passes it on after each tick):
        #: each re-read's summary, and the believed tickers that newly have no market.
        self._said: list[str] = []

    @property
    def last_error(self) -> str | None:
        """One line for the operator while the file has refused lines, else None."""
        if not self.problems:
            return None
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{self.problems[0]}{more}; last good beliefs stay in force"

    def reload(self) -> bool:
        """Re-read if the file changed; True when it was re-read. Never raises: a refused
        line keeps its market's last good p_hat, an unreadable file keeps them all."""
        sig = _signature(self.path)
        if sig == self._sig:  # unchanged (or still missing: said so already)
            return False
        self._sig = sig
        parsed = parse_beliefs(self.path)
        old = self.beliefs
        if parsed.unreadable:
            new = dict(old)
            kept = tuple(sorted(old))
        else:
            new = dict(parsed.beliefs)
            refused_tickers = {p.ticker for p in parsed.problems if p.ticker}
            kept = tuple(sorted(t for t in refused_tickers if t in old and t not in new))
            for t in kept:
                new[t] = old[t]
        self.beliefs = new
        self.problems = parsed.problems
        self.reloads += 1
        self.last_reload = ReloadResult(
            changed=tuple(sorted(t for t, p in new.items() if old.get(t) != p)),
            removed=tuple(sorted(t for t in old if t not in new)),
            kept=kept,
            refused=parsed.problems,
        )
        self._said.append(self.last_reload.summary())
        return True

    def take_said(self) -> list[str]:
        out, self._said = self._said, []
        return out

    def tickers(self) -> set[str]:
        return set(self.beliefs)

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        self.reload()
        wanted = set(tickers)
        if wanted:  # a tick without market data (the feed down) says nothing about which markets exist
            unmatched = frozenset(t for t in self.beliefs if t not in wanted)
            newly = unmatched - self.unmatched
            self.unmatched = unmatched
            if newly:
                self._said.append(unmatched_summary(newly))
        return [
            Estimate(ticker=t, p_hat=p, source=BELIEFS_SOURCE, ts=now_ms)
            for t, p in sorted(self.beliefs.items())
            if t in wanted
        ]
