"""The operator's beliefs file: ticker -> p_hat, as TOML or CSV.

TOML:   [beliefs]            CSV:  ticker,p_hat
        KXFED-25DEC = 0.62         KXFED-25DEC,0.62

The file is re-read when it changes; the engine stores each changed estimate with a
timestamp so later reports can score it.
"""

from __future__ import annotations

import csv
import os
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path

from kakashi_tui.core.models import Estimate
from kakashi_tui.errors import ConfigError

BELIEFS_SOURCE = "beliefs-file"


def _p(ticker: str, raw: object, where: str) -> Decimal:
    try:
        p = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ConfigError(f"{where}: p_hat for {ticker} is not a number: {raw!r}") from None
    if not (0 <= p <= 1):
        raise ConfigError(f"{where}: p_hat for {ticker} must be in [0, 1], got {p}")
    return p


def load_beliefs(path: Path) -> dict[str, Decimal]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read beliefs file {path}: {e.strerror}") from e
    except UnicodeDecodeError:
        raise ConfigError(f"beliefs file {path} is not UTF-8 text") from None
    out: dict[str, Decimal] = {}
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(text.splitlines()))
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["ticker", "p_hat"]:
            rows = rows[1:]
        for i, row in enumerate(rows, start=2):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 2 or not row[0].strip():
                raise ConfigError(f"{path}:{i}: expected 'ticker,p_hat'")
            out[row[0].strip()] = _p(row[0].strip(), row[1], f"{path}:{i}")
        return out
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"beliefs file {path} is not valid TOML: {e}") from None
    table = data.get("beliefs", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [beliefs] must be a table of ticker = p_hat")
    for t, v in table.items():
        if isinstance(v, dict):
            raise ConfigError(f"{path}: unexpected table [{t}]; expected ticker = p_hat")
        out[t] = _p(t, v, str(path))
    return out


class BeliefsFile:
    """An estimator that reads the operator's beliefs, reloading when the file changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._mtime: float | None = None
        self.beliefs: dict[str, Decimal] = {}
        self.last_error: str | None = None
        self.reload()

    def reload(self) -> bool:
        """Re-read if the file changed. A bad edit keeps the last good beliefs."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as e:
            raise ConfigError(f"cannot read beliefs file {self.path}: {e.strerror}") from e
        if mtime == self._mtime:
            return False
        self.beliefs = load_beliefs(self.path)
        self._mtime = mtime
        return True

    def tickers(self) -> set[str]:
        return set(self.beliefs)

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        try:
            self.reload()
            self.last_error = None
        except ConfigError as e:  # mid-run: keep trading on the last good file, say so
            self.last_error = str(e)
        wanted = set(tickers)
        return [Estimate(ticker=t, p_hat=p, source=BELIEFS_SOURCE, ts=now_ms)
                for t, p in sorted(self.beliefs.items()) if t in wanted]
