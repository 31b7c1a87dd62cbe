"""The ledger's hash chain, its head beside the database, and the ledger's reconciliation with
the records kept apart from it (data_schema.md, "The ledger's chain").

Each ledger entry carries ``chain = SHA-256(previous entry's chain, its own id and content)``,
written in the same transaction as the entry. An entry edited, inserted or deleted anywhere
but the end breaks every later link. A deleted tail leaves an intact chain, so the writer also
keeps the chain's head (entry count, last id, last hash) in a file beside the database,
rewritten after each commit that added entries. The chain proves the entries are the ones
Kakashi wrote in that order; it cannot stop someone who rewrites the file and the head together.
So the ledger is also reconciled, entry by entry, with the records it was made from: each
fill's row, each settled market's recorded result, and the first deposit's event.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from kakashi_tui.adapters.crashlog import create_private
from kakashi_tui.adapters.userfiles import read_regular
from kakashi_tui.core.errors import StoreError
from kakashi_tui.core.ledger import Account, Kind, LedgerEntry, buy_entries, payout_cc, sell_entries
from kakashi_tui.core.models import Fill, Market, Side
from kakashi_tui.core.money import hundredths_to_count

HEAD_LIMIT = 4096  # bytes: a head is about 110

#: The link before the first entry.
GENESIS = "kakashi-ledger"

#: The columns a link covers, in the order hashed (and read back).
CHAINED = "id, ts, kind, ticker, side, contracts_hundredths, amount_cc, key"


def link(prev: str, *row: Any) -> str:
    """The chain value of one ledger row (its CHAINED columns) after ``prev``."""
    text = "\x1f".join([prev, *("" if v is None else str(v) for v in row)])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def broken(entry_id: Any, why: str) -> StoreError:
    """The one error for a ledger that is not what Kakashi wrote (exit 1)."""
    return StoreError(f"corrupt database: ledger entry {entry_id}: {why}; restore a backup or start a new --db", 1)


def head_path(db: str | os.PathLike[str]) -> Path:
    return Path(f"{db}.ledger-head")


def write_head(db: str | os.PathLike[str], con: sqlite3.Connection) -> None:
    """Record the chain's head beside the database (after a commit: the file is never ahead
    of what is committed). Written to a new private file, then renamed over the old one."""
    n, last_id = con.execute("SELECT COUNT(*), MAX(id) FROM ledger").fetchone()
    if not n:
        return
    (chain,) = con.execute("SELECT chain FROM ledger WHERE id = ?", (last_id,)).fetchone()
    path = head_path(db)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        with os.fdopen(create_private(tmp), "w", encoding="utf-8") as f:
            json.dump({"entries": n, "last_id": last_id, "chain": chain}, f)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write the ledger head {path}: {e.strerror}", 1) from e


def read_head(db: str | os.PathLike[str]) -> tuple[int, int, str] | None:
    """(entries, last id, chain) from the head file; None when there is none."""
    path = head_path(db)
    try:
        raw = read_regular(path, HEAD_LIMIT).decode("utf-8")  # never waits on a pipe put there
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise StoreError(f"corrupt database: the ledger head {path} is unreadable ({e})", 1) from None
    try:
        d = json.loads(raw)
        n, last_id, chain = d["entries"], d["last_id"], d["chain"]
        if type(n) is not int or type(last_id) is not int or not isinstance(chain, str):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: [[[[... (4 KiB of it)
        raise StoreError(f"corrupt database: the ledger head {path} is not one Kakashi wrote", 1) from None
    return n, last_id, chain


#: Why a link fails.
UNLINKED = "its hash does not match its content and the entry before it (edited, inserted, or one before it deleted)"


def check_head(ids_and_chains: list[tuple[int, str]], head: tuple[int, int, str] | None) -> None:
    """The head, when there is one, is an entry of this (verified) chain, with as many entries
    up to it: entries after it are new since it was written, none before it may be missing."""
    if head is None:
        return
    n, last_id, chain = head
    for i, (row_id, row_chain) in enumerate(ids_and_chains):
        if row_id == last_id:
            if i + 1 != n or row_chain != chain:
                raise broken(row_id, f"does not match the ledger head kept beside the database ({n} entries)")
            return
    raise broken(last_id, f"missing (deleted): the ledger head beside the database ends at it, after {n} entries")


def _fill(row: tuple[Any, ...]) -> tuple[int, Fill]:
    fid, ts, ticker, side, action, requested, contracts, value, fee = row
    return fid, Fill(
        ticker=ticker,
        ts=ts,
        side=Side(side),
        action=action,
        requested=hundredths_to_count(requested),
        contracts=hundredths_to_count(contracts),
        value_cc=value,
        fee_cc=fee,
        levels=(),
    )


def _differs(got: LedgerEntry, want: LedgerEntry) -> bool:
    return (got.kind, got.amount_cc, got.contracts, got.ticker, got.side) != (
        want.kind,
        want.amount_cc,
        want.contracts,
        want.ticker,
        want.side,
    )


#: The entries a fill makes (core.ledger's buy_entries / sell_entries): each needs its fill row.
FILL_KINDS = frozenset((Kind.BUY, Kind.BUY_FEE, Kind.SELL, Kind.SELL_FEE))


def reconcile(con: sqlite3.Connection, entries: list[tuple[int, LedgerEntry]]) -> None:
    """The ledger against the records apart from it: every fill row has exactly its entries
    (core.ledger's buy_entries / sell_entries) and every entry a fill makes a fill row; no key
    appears twice; what each settled position was paid is what its market's recorded result
    pays, a settlement closes the whole position and none is left open that its result should
    have paid; the ledger begins with a deposit, the one the start recorded in ``events``, and
    makes no other."""
    by_key: dict[str, tuple[int, LedgerEntry]] = {}
    for i, e in entries:
        if e.key in by_key:  # the unique index makes fills and settlements exactly-once
            raise broken(i, f"its key {e.key[:60]!r} repeats entry {by_key[e.key][0]}")
        by_key[e.key] = (i, e)
    for row in con.execute(
        "SELECT id, ts, ticker, side, action, requested_hundredths, contracts_hundredths, value_cc, fee_cc"
        " FROM fills ORDER BY id"
    ):
        try:
            fid, fill = _fill(row)
        except (ValueError, TypeError, ArithmeticError):
            raise StoreError(f"corrupt database: fills row {row[0]}: not a fill Kakashi wrote", 1) from None
        for want in (buy_entries if fill.action == "buy" else sell_entries)(fill, fid):
            got = by_key.pop(want.key, None)
            if got is None:
                raise broken(want.key, f"missing: fill {fid} has no {want.kind.value} entry")
            if _differs(got[1], want):
                raise broken(
                    got[0], f"{got[1].kind.value} {got[1].amount_cc} cc does not match fill {fid} ({want.amount_cc} cc)"
                )
    for i, e in by_key.values():
        if e.key.startswith("fill:") or e.kind in FILL_KINDS:
            raise broken(i, f"{e.key[:60]} has no fill row")
    _reconcile_settlements(con, [(i, e) for i, e in entries if e.kind in (Kind.SETTLE, Kind.SETTLE_FIX)])
    _reconcile_positions(con, entries)
    for i, e in entries[1:]:
        if e.kind is Kind.DEPOSIT:  # Kakashi deposits once, at the start
            raise broken(i, "a deposit the start did not make")
    if not entries:
        return
    first_id, first = entries[0]
    if first.kind is not Kind.DEPOSIT:
        raise broken(first_id, "the ledger does not begin with the start's deposit")
    row = con.execute("SELECT detail FROM events WHERE kind = 'deposit' ORDER BY id LIMIT 1").fetchone()
    if row is None or recorded_deposit_cc(row[0]) != first.amount_cc:  # (the engine records both at once)
        said = "no deposit" if row is None else repr(str(row[0])[:40])
        raise broken(first_id, f"the first deposit is {first.amount_cc} cc, the start recorded {said}")


def recorded_deposit_cc(detail: Any) -> int | None:
    """The start's deposit as its ``events`` row says it: ``"<n> cc"`` (schema 4 on), or a
    bare number of cents (the engine wrote that before schema 4, and migration kept it)."""
    text = str(detail).strip()
    per = 1 if text.endswith(" cc") else 100
    text = text.removesuffix(" cc").strip()
    return int(text) * per if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _reconcile_positions(con: sqlite3.Connection, entries: list[tuple[int, LedgerEntry]]) -> None:
    """A settlement closes the whole position it pays (core.ledger's settle_entries), and no
    position is still open that was already held when its market's result was recorded (the
    engine records a result and pays what is held in one transaction)."""
    acct = Account()
    opened: dict[tuple[str, Side], int] = {}  # the entry that opened each position
    for i, e in entries:
        held = None if e.side is None else acct.positions.get((e.ticker, e.side))
        if e.kind is Kind.SETTLE and held is not None and held.contracts != -e.contracts:
            raise broken(i, f"settles {-e.contracts} of {e.ticker} while {held.contracts} are held")
        try:
            acct.apply(e)
        except ValueError:
            raise broken(i, "it closes more than is held") from None
        if held is None and e.side is not None and (e.ticker, e.side) in acct.positions:
            opened[(e.ticker, e.side)] = i
    for (ticker, side), pos in acct.positions.items():
        row = con.execute("SELECT ts FROM outcomes WHERE ticker = ?", (ticker,)).fetchone()
        if row is not None and type(row[0]) is int and row[0] > pos.opened_ts:
            raise broken(
                opened[(ticker, side)],
                f"{ticker} {side.value} is still held, though its result was recorded after it was bought",
            )


def _reconcile_settlements(con: sqlite3.Connection, entries: list[tuple[int, LedgerEntry]]) -> None:
    groups: dict[tuple[str, Side], list[tuple[int, LedgerEntry]]] = defaultdict(list)
    for i, e in entries:
        assert e.side is not None
        groups[(e.ticker, e.side)].append((i, e))
    for (ticker, side), group in groups.items():
        row = con.execute(
            "SELECT status, result, settlement_value FROM outcomes WHERE ticker = ?", (ticker,)
        ).fetchone()
        last = group[-1][0]
        if row is None:
            raise broken(last, f"pays {ticker} {side.value}, but no result is recorded for {ticker}")
        try:
            market = outcome_market(ticker, *row)
            closed = [-e.contracts for _i, e in group if e.kind is Kind.SETTLE]
            if any(e.kind is Kind.SETTLE_FIX for _i, e in group):  # a fix brings the total to the result
                want = payout_cc(market, side, sum(closed, Decimal(0)))
            else:
                want = sum(payout_cc(market, side, c) for c in closed)
        except (ValueError, TypeError, ArithmeticError):
            raise broken(last, f"{ticker}'s recorded result ({str(row[1])[:20]!r}) cannot be paid") from None
        paid = sum(e.amount_cc for _i, e in group)
        if paid != want:
            raise broken(last, f"{ticker} {side.value} was paid {paid} cc, its recorded result pays {want} cc")


def outcome_market(ticker: str, status: Any, result: Any, value: Any) -> Market:
    """A settled market's stored outcome row as the Market its payout is computed from."""
    return Market(
        ticker=ticker,
        status=status,
        result=result,
        settlement_value=None if value is None else Decimal(value),
        market_type="scalar" if result == "scalar" else "binary",
    )
