"""Read-only look-ups for the desk's screens (a market's history, the rejected rows, what
happened before a restart), each on a read-only connection of the caller's (never the writer)."""

from __future__ import annotations

import sqlite3

from kakashi_tui.adapters import queries


def market_history(con: sqlite3.Connection, ticker: str, limit: int = 240):
    """(quotes oldest first as (ts, bid, ask), latest volume, p̂ changes as (ts, p_hat)) for one market."""
    from decimal import Decimal

    from kakashi_tui.core.money import cc_to_price, hundredths_to_count

    def real_to_price(cc: int | None) -> Decimal | None:
        return None if cc is None else cc_to_price(cc)

    rows = queries.snapshot_history(con, ticker, limit)
    quotes = tuple((ts, real_to_price(b), real_to_price(a)) for ts, b, a, _v in rows)
    volume = hundredths_to_count(rows[-1][3]) if rows else None
    since = rows[0][0] if rows else 0
    est, before = queries.estimates_since(con, ticker, since)
    p_hats = [(since, Decimal(str(before[1])))] if before else []
    p_hats += [(ts, Decimal(str(p))) for ts, p in est]
    return quotes, volume, tuple(p_hats)


def _payload_ticker(payload: str) -> str:
    import json

    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):  # a payload edited by hand: [[[[...
        return ""
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            t = o.get("ticker")
            if isinstance(t, str) and t:
                return t
            stack.extend(v for v in o.values() if isinstance(v, (dict, list)))
        elif isinstance(o, list):
            stack.extend(v for v in o if isinstance(v, (dict, list)))
    return ""


def rejected_rows(con: sqlite3.Connection, limit: int = 500) -> tuple[list[tuple], int]:
    """The rejected rows, latest first, as (last seen, ticker, source, reason, payload, times seen), and how many
    rows were rejected in all (a bad row repeating every tick is one record with a count)."""
    rows, total = queries.rejected_row_records(con, limit)
    return [(ts, t or _payload_ticker(p or ""), src, reason, p or "", n) for ts, t, src, reason, p, n in rows], total


def recent_history(con: sqlite3.Connection, limit: int = 60):
    """The latest decisions and control events, for a restarted desk's log: (decisions, events)."""
    from kakashi_tui.core.money import cc_to_price, hundredths_to_count

    decisions = [
        (ts, t, side, hundredths_to_count(n), cc_to_price(lim), ev, acc, reason)
        for ts, t, side, n, lim, ev, acc, reason in queries.recent_decision_rows(con, limit)
    ]
    events = queries.recent_events(con, limit)
    return decisions, events


#: How a fill met the book where the fills table does not say (``fills.role`` NULL: a sale into
#: the bids, or a fill stored before paper orders): each of those crossed the spread, a taker's.
TAKER = "taker"


def fills_blotter(con: sqlite3.Connection, limit: int = 1000) -> tuple[list[tuple], int]:
    """The latest ``limit`` fills, newest first, as (id, ts, ticker, side, action, contracts,
    average price, value_cc, fee_cc, liquidity), and how many fills there are in all."""
    from decimal import Decimal

    from kakashi_tui.core.money import hundredths_to_count

    rows, total = queries.blotter_rows(con, limit)
    out = []
    for fid, ts, ticker, side, action, h, value_cc, fee_cc, role in rows:
        avg = Decimal(value_cc) / Decimal(100 * h) if h else None  # value in $0.0001 / contracts in hundredths
        out.append((fid, ts, ticker, side, action, hundredths_to_count(h), avg, value_cc, fee_cc, role or TAKER))
    return out, total
