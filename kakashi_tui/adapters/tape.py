"""The tape (issue #23): book changes and trade prints turned into what the engine's fill models
read (``source.TapeBook``, ``TapePrint``, ``TapeGap``), one rule for every source that has them.

A live WebSocket feed (``kalshi/ws.py``) and a replayed catalog (``columnar.py``) hand over the
same two streams: book rows (the catalog's ``book_deltas``: ``snapshot`` levels, ``delta``
changes, ``reset`` when the feed lost the book) and trade prints (the ``trades`` table). Both
go through ``TapeBuilder``, so a replay reads the tape the live run read:

- **Books** are kept for every market the book rows name (a market an order is placed in later
  needs its book from the last snapshot on), as ``catalog.rebuild_books`` keeps them; a tape
  entry is made only for the markets asked for (``want``: those the engine has orders or
  positions in). Consecutive rows of one market sharing a receive time, an exchange time and a
  kind are one update (a snapshot's levels, a step's re-quote): one ``TapeBook`` after them.
  A ``reset`` is a ``TapeGap``: the book is unknown until the market's next snapshot.
- **Order**: each stream keeps its own recorded order; the two are merged by (receive time,
  exchange time), a print first where they tie (the print, then the book it left).
- **Times**: every entry is stamped with its **receive time**, what Kakashi knew when (a
  print's own time is the exchange's; its ``Print.ts`` here is when it was received).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from kakashi_tui.adapters.source import TapeBook, TapeEvent, TapeGap, TapePrint
from kakashi_tui.core.models import Quote, Side
from kakashi_tui.core.queue import Print

_FULL = 10_000
_TAKER = {"yes": Side.YES, "no": Side.NO}


def book_quote(
    ticker: str,
    ts: int,
    yes: Sequence[tuple[int, int]] | Mapping[int, int],
    no: Sequence[tuple[int, int]] | Mapping[int, int],
) -> Quote:
    """A ``Quote`` of a book's bids (price cc -> hundredths, or (price, hundredths) pairs; any
    order): best first, its top of book from them (no last trade, no volume)."""
    ys = sorted(yes.items() if isinstance(yes, Mapping) else yes, reverse=True)
    ns = sorted(no.items() if isinstance(no, Mapping) else no, reverse=True)
    ys = [(c, q) for c, q in ys if q > 0]
    ns = [(c, q) for c, q in ns if q > 0]
    return Quote(
        ticker,
        ts,
        ys[0][0] if ys else None,
        _FULL - ns[0][0] if ns else None,
        None,
        0,
        ([c for c, _ in ys], [q for _, q in ys], [c for c, _ in ns], [q for _, q in ns]),
    )


class BookRow(NamedTuple):
    """One book change, in the catalog's ``book_deltas`` units (``kalshi.ws.BookEvent``'s fields)."""

    ts: int  # receive time
    ticker: str
    side: str | None
    price_cc: int | None
    delta_hundredths: int | None
    seq: int | None
    sid: int | None
    kind: str  # snapshot | delta | reset
    exchange_ts: int | None = None


class PrintRow(NamedTuple):
    """One trade print, in the catalog's ``trades`` units (``kalshi.wire.Trade``'s fields)."""

    recv_ts: int
    ticker: str
    yes_price_cc: int
    count_hundredths: int
    taker_side: str | None  # the taker's outcome side: yes | no
    taker_book_side: str | None  # bid | ask
    is_block_trade: bool | None
    ts: int  # the exchange's time of the trade


def print_of(p: PrintRow) -> Print:
    """A print for the fill models, stamped with its receive time."""
    return Print(
        p.recv_ts,
        p.yes_price_cc,
        p.count_hundredths,
        _TAKER.get(p.taker_side or ""),
        p.taker_book_side,
        p.is_block_trade,
    )


class TapeBuilder:
    """Books kept from book rows, and the tape of the markets asked for (see the module)."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        self._snap_of: dict[str, tuple[Any, Any, Any]] = {}

    def _apply(self, r: BookRow) -> bool:
        """Apply one row; whether the market's book is known after it."""
        t = r.ticker
        if r.kind == "reset":
            self.books.pop(t, None)
            self._snap_of.pop(t, None)
            return False
        if r.kind == "snapshot":
            key = (r.sid, r.seq, r.ts)
            if self._snap_of.get(t) != key:
                self._snap_of[t] = key
                self.books[t] = ({}, {})
            if r.side in ("yes", "no") and r.price_cc is not None and r.delta_hundredths:
                self.books[t][0 if r.side == "yes" else 1][r.price_cc] = r.delta_hundredths
            return True
        self._snap_of.pop(t, None)
        book = self.books.get(t)
        if book is None or r.side not in ("yes", "no") or r.price_cc is None or r.delta_hundredths is None:
            return book is not None
        side = book[0 if r.side == "yes" else 1]
        q = side.get(r.price_cc, 0) + r.delta_hundredths
        if q > 0:
            side[r.price_cc] = q
        else:
            side.pop(r.price_cc, None)
        return True

    def tape(
        self, rows: Iterable[BookRow], prints: Iterable[PrintRow], want: set[str] | frozenset[str]
    ) -> list[TapeEvent]:
        """Apply ``rows`` (in recorded order) and merge them with ``prints`` into the tape of the
        markets in ``want`` (see the module for the rules)."""
        books: list[tuple[int, int, int, int, TapeEvent]] = []  # (recv, exchange, 1, n, event)
        n = 0
        group: tuple[str, int, int | None, str] | None = None  # the update being gathered
        last: BookRow | None = None

        def close() -> None:
            nonlocal n
            if last is None or last.ticker not in want:
                return
            ex = last.exchange_ts if last.exchange_ts is not None else last.ts
            book = self.books.get(last.ticker)
            n += 1
            if book is None:
                books.append((last.ts, ex, 1, n, TapeGap(last.ts, last.ticker)))
            else:
                q = book_quote(last.ticker, ex, book[0], book[1])
                books.append((last.ts, ex, 1, n, TapeBook(last.ts, last.ticker, q, snapshot=last.kind == "snapshot")))

        for r in rows:
            key = (r.ticker, r.ts, r.exchange_ts, r.kind)
            if group is not None and key != group:
                close()
            group, last = key, r
            self._apply(r)
        if group is not None:
            close()
        out: list[tuple[int, int, int, int, TapeEvent]] = []
        for p in prints:
            if p.ticker in want:
                n += 1
                out.append((p.recv_ts, p.ts, 0, n, TapePrint(p.ticker, print_of(p))))
        # each stream in its own order; merged by (receive, exchange time), a print first on a tie
        merged = heapq.merge(out, books, key=lambda e: (e[0], e[1], e[2]))
        return [e[4] for e in merged]
