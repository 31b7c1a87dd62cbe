"""The closing line: a market's last mid before it stopped trading (issue #24, item 2). One home,
read by everything that compares a price with the close: the report's closing-line value and
its markouts' last horizon, and a plan's CLV (the engine's kill conditions, ``kakashi plan show``
and the report's grade of the plan), so they cannot disagree on a market's close.

In order: the database's last two-sided quote at or before the time the market stopped trading
(``closing_quote``; when that was: ``core/markout.py`` ``market_stop``), else the catalog's
candlesticks (``Candles``, what ``kakashi catalog backfill`` stored): the last period's bid/ask
mid, else its last trade. The catalog (and pyarrow) is read only when a closing quote is missing
and the catalog holds candlesticks, once per ``Candles``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from kakashi_tui.adapters.store.rows import typed

#: Where an entry's closing line came from.
SRC_DB = "snapshots"  # the recorded quotes in the database: the last two-sided mid before the close
SRC_CANDLE_MID = "candles (bid/ask)"  # the catalog's candlesticks: yes_bid_close + yes_ask_close
SRC_CANDLE_LAST = "candles (last trade)"  # the catalog's candlesticks: close (a trade, no quote)


def catalog_of(db: str | Path, configured: str | Path | None = None) -> Path:
    """The catalog closing lines read candlesticks from: the one configured (``[catalog] dir``),
    else ``catalog/`` beside the database (as ``adapters.catalog.default_catalog_dir``, named here
    so no reader loads pyarrow unless that folder holds candlesticks)."""
    return Path(configured) if configured else Path(db).resolve().parent / "catalog"


def closing_quote(con: sqlite3.Connection, ticker: str, ts: int) -> tuple[int, int, int] | None:
    """A market's last two-sided quote at or before ``ts`` as (ts, yes_bid_cc, yes_ask_cc), in
    centicents: its closing line when ``ts`` is when it stopped trading (None when it had none)."""
    row = con.execute(
        "SELECT id, ts, yes_bid_cc, yes_ask_cc FROM snapshots WHERE ticker = ? AND ts <= ?"
        " AND yes_bid_cc IS NOT NULL AND yes_ask_cc IS NOT NULL ORDER BY ts DESC, id DESC LIMIT 1",
        (ticker, ts),
    ).fetchone()
    if row is None:
        return None
    _id, at, bid, ask = typed("snapshots", row, "itii", "id, ts, yes_bid_cc, yes_ask_cc")
    return at, bid, ask


class Candles:
    """The catalog's candlesticks (``root``; None: no catalog), read once and only when a closing
    quote is missing from the database. ``note`` says why they could not be read, if so."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._by: dict[str, list[tuple[int, Any, Any, Any]]] | None = None
        self.note = ""

    def _load(self) -> dict[str, list[tuple[int, Any, Any, Any]]]:
        by: dict[str, list[tuple[int, Any, Any, Any]]] = {}
        if self.root is not None and (self.root / "candles").is_dir():
            from kakashi_tui.adapters.catalog import read_table
            from kakashi_tui.core.errors import KakashiError

            try:
                cols = ["ts", "ticker", "close_cc", "yes_bid_close_cc", "yes_ask_close_cc"]
                rows = read_table(self.root, "candles", cols).to_pylist()
            except KakashiError as e:
                self.note = f"the catalog's candlesticks were not read ({e})"
                rows = []
            for r in rows:
                by.setdefault(r["ticker"], []).append(
                    (r["ts"], r["close_cc"], r["yes_bid_close_cc"], r["yes_ask_close_cc"])
                )
            for v in by.values():
                v.sort(key=lambda c: c[0])
        return by

    def closing(self, ticker: str, stop_ms: int) -> tuple[int, str] | None:
        """The last candle at or before ``stop_ms``, as twice its YES mid in centicents: its
        bid/ask mid where both rest (0 and 1 are none), else its last trade."""
        if self._by is None:
            self._by = self._load()
        for ts, close, bid, ask in reversed(self._by.get(ticker, [])):
            if ts > stop_ms:
                continue
            if bid is not None and ask is not None and 0 < bid and ask < 10_000:
                return bid + ask, SRC_CANDLE_MID
            if close is not None:
                return 2 * close, SRC_CANDLE_LAST
            return None
        return None


def closing_line(con: sqlite3.Connection, ticker: str, stop_ms: int, candles: Candles | None) -> tuple[int, str] | None:
    """A market's closing line, as twice its YES mid in centicents, and where it came from: the
    last two-sided quote stored at or before ``stop_ms`` (when it stopped trading), else the
    catalog's candlesticks (``Candles.closing``; ``candles`` None: no catalog); None when
    neither has one."""
    cq = closing_quote(con, ticker, stop_ms)
    if cq is not None:
        return cq[1] + cq[2], SRC_DB
    return None if candles is None else candles.closing(ticker, stop_ms)
