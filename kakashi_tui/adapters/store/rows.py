"""Stored rows back into the domain's types (ledger entries, quotes, the account), each checked:
a row a hand edit broke is ``corrupt database: ...``, never a wrong number.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, cast

from kakashi_tui.adapters.store.chain import (
    CHAINED,
    GENESIS,
    UNLINKED,
    broken,
    check_head,
    link,
    read_head,
    reconcile,
)
from kakashi_tui.adapters.userfiles import NotRegularFile, check_regular
from kakashi_tui.core.errors import StoreError
from kakashi_tui.core.fees import FeeSchedule, FeeTerms
from kakashi_tui.core.ledger import Account, Kind, LedgerEntry
from kakashi_tui.core.models import Quote, Side
from kakashi_tui.core.money import CC_PER_DOLLAR, count_to_hundredths, hundredths_to_count, price_to_cc
from kakashi_tui.core.rowrules import MAX_TS_MS

_INT64 = range(-(2**63), 2**63)  # what SQLite's INTEGER holds
_TIMES = range(1, MAX_TS_MS + 1)  # what a date can be printed from


def real_to_price(x: float | None) -> Decimal | None:
    """A probability stored in a REAL column (p_hat; prices before v4) back as its exact Decimal."""
    return None if x is None else Decimal(str(round(x, 4)))


_SIDE_TEXT = {
    side: side.value for side in Side
}  # (an enum's .value is a property call; a decision row is made per decision)


def account_from_ledger(con: sqlite3.Connection) -> Account:
    """The account folded from the ledger; entries that do not add up (one closes more than is
    held) are a corrupt database, like a row that does not parse."""
    return account_of(read_ledger(con))


def account_of(entries: Iterable[LedgerEntry]) -> Account:
    """The account folded from checked entries; entries that do not add up are a corrupt database."""
    try:
        return Account.from_entries(entries)
    except ValueError as e:
        raise StoreError(f"corrupt database: ledger: {e}; restore a backup or start a new --db", 1) from None


def read_ledger(con: sqlite3.Connection) -> Iterator[LedgerEntry]:
    """The ledger in order of application, from any connection (the writer's or a read-only one).
    A row that is not what Kakashi writes (edited by hand: text where a number belongs, an
    unknown kind, a link of the hash chain that does not hold) is a StoreError "corrupt
    database", never a wrong balance or a crash."""
    for _id, e, _chain in read_chained_ledger(con):
        yield e


def read_chained_ledger(con: sqlite3.Connection) -> Iterator[tuple[int, LedgerEntry, str]]:
    """(id, entry, chain) in order, each row checked and its chain link verified (store/chain.py)."""
    prev = GENESIS
    for row in con.execute(f"SELECT {CHAINED}, chain FROM ledger ORDER BY id"):
        row_id, ts, kind, ticker, side, contracts, amount, key, chain = row
        entry = ledger_entry_from_row(row_id, ts, kind, amount, key, ticker, side, contracts)
        if chain != link(prev, *row[:-1]):
            raise broken(row_id, UNLINKED)
        prev = chain
        yield row_id, entry, chain


def verify_ledger(con: sqlite3.Connection, db: str | os.PathLike[str], reconciled: bool = True) -> list[LedgerEntry]:
    """The whole ledger, checked: every row and link, the head kept beside the database, and
    (``reconciled``) the reconciliation with fills, results and the first deposit
    (store/chain.py), all in one read snapshot. Returns the entries; a failure is
    "corrupt database: ledger entry N ..."."""
    head = read_head(db)  # before the snapshot: the database is never behind its head
    own = not con.in_transaction
    if own:
        con.execute("BEGIN")
    try:
        rows = list(read_chained_ledger(con))
        check_head([(i, c) for i, _e, c in rows], head)
        if reconciled:
            reconcile(con, [(i, e) for i, e, _c in rows])
    finally:
        if own:
            con.execute("COMMIT")
    return [e for _i, e, _c in rows]


_KINDS: dict[str, tuple[type, ...]] = {"i": (int,), "t": (int,), "f": (int, float), "s": (str,)}
_WHAT = {"i": "a whole number", "t": "a time in epoch ms", "f": "a number", "s": "text"}


def typed(table: str, row: tuple[Any, ...], kinds: str, names: str = "") -> tuple[Any, ...]:
    """``row`` as read, each column checked against ``kinds`` (one letter a column: ``i`` an
    integer, ``t`` a time (epoch ms up to year 9999), ``f`` a finite number, ``s`` text; upper
    case: or NULL); a column another tool wrote otherwise is ``corrupt database: <table> row
    ...`` (its first column names the row)."""
    for i, (v, k) in enumerate(zip(row, kinds, strict=True)):
        if v is None and k.isupper():
            continue
        kind = k.lower()
        if (
            type(v) not in _KINDS[kind]
            or (type(v) is int and v not in (_TIMES if kind == "t" else _INT64))
            or (type(v) is float and not math.isfinite(v))
        ):
            name = names.split(",")[i].strip() if names else f"column {i + 1}"
            raise corrupt(table, row[0], f"{name} is {str(v)[:40]!r}, not {_WHAT[kind]}")
    return row


def corrupt(table: str, row_id: Any, why: str) -> StoreError:
    """The one error for a stored row Kakashi cannot have written (exit 1)."""
    return StoreError(f"corrupt database: {table} row {row_id}: {why}; restore a backup or start a new --db", 1)


def checked_tick_ts(row_id: Any, ts: Any) -> int | None:
    """A stored tick time (None: no tick yet); anything but a time in range is corrupt."""
    if ts is not None and (type(ts) is not int or not 0 < ts <= MAX_TS_MS):
        raise corrupt("ticks", row_id, f"ts is {str(ts)[:40]!r}, not a time in epoch ms")
    return ts


def tick_from_row(tick: Any, ts: Any, equity_cc: Any, cash_cc: Any) -> tuple[int, int, int]:
    """A ``ticks`` row as (ts, equity_cc, cash_cc), each a whole number Kakashi could have written."""
    if ts is None:
        raise corrupt("ticks", tick, "ts is missing")
    for name, v in (("equity_cc", equity_cc), ("cash_cc", cash_cc)):
        if type(v) is not int or v not in _INT64:
            raise corrupt("ticks", tick, f"{name} is {str(v)[:40]!r}, not a whole number")
    return cast(int, checked_tick_ts(tick, ts)), equity_cc, cash_cc


def refuse_special_file(path: str | os.PathLike[str]) -> None:
    """A database path naming a pipe, a device or a folder is refused before it is opened
    (opening a pipe waits forever; SQLite would write into a device) and left as it is."""
    try:
        check_regular(path)
    except (NotRegularFile, IsADirectoryError) as e:
        raise StoreError(f"cannot open database {path}: {e.strerror}; left untouched", 2) from None
    except (OSError, ValueError):
        return  # missing (a new database) or unreachable: the opener says so in its own words


def ledger_entry_from_row(row_id, ts, kind, amount_cc, key, ticker, side, contracts_hundredths) -> LedgerEntry:
    for name, v in (("ts", ts), ("amount_cc", amount_cc), ("contracts_hundredths", contracts_hundredths)):
        if type(v) is not int or v not in _INT64:
            raise broken(row_id, f"{name} is {str(v)[:40]!r}, not a whole number")
    if not isinstance(key, str) or not key or not isinstance(ticker, (str, type(None))):
        raise broken(row_id, "key or ticker is not text")
    try:
        k = Kind(kind)
        sd = Side(side) if side else None
    except ValueError:
        raise broken(row_id, f"unknown kind or side ({str(kind)[:20]!r}, {str(side)[:20]!r})") from None
    if sd is None and k not in (Kind.DEPOSIT, Kind.NOTE):
        raise broken(row_id, f"a {k.value} entry without a side")
    if k is Kind.NOTE and (amount_cc or contracts_hundredths or sd is not None):
        raise broken(row_id, "a note that moves cash or contracts")
    return LedgerEntry(
        ts=ts,
        kind=k,
        amount_cc=amount_cc,
        key=key,
        ticker=ticker or "",
        side=sd,
        contracts=hundredths_to_count(contracts_hundredths),
    )


def read_latest_snapshot(con: sqlite3.Connection, ticker: str) -> Quote | None:
    """A market's last stored quote (its mark), from any connection."""
    row = con.execute(
        "SELECT ticker, ts, yes_bid_cc, yes_ask_cc, last_cc, volume_hundredths, book FROM snapshots"
        " WHERE ticker = ? ORDER BY ts DESC, id DESC LIMIT 1",
        (ticker,),
    ).fetchone()
    if row is None:
        return None
    try:
        return snapshot_from_row(*row)
    except (TypeError, ValueError, ArithmeticError, AttributeError, RecursionError) as e:  # JSON, Decimal, [[[[...
        raise corrupt(
            "snapshots", f"(latest of {ticker[:40]})", f"not a snapshot Kakashi wrote ({str(e).splitlines()[0][:80]})"
        ) from None


def read_fee_terms(con: sqlite3.Connection, ticker: str, fees: FeeSchedule) -> FeeTerms:
    """The fee terms the engine charges in ``ticker``: its stored market row's fee columns (the
    fee the feed found in force: series, schedule, event override) through ``fees`` (the
    config's ``FeeSchedule``), as ``FeeSchedule.for_market`` reads the engine's market. No row:
    the default terms, as the engine's. A value Kakashi cannot have written is corrupt."""
    row = con.execute(
        "SELECT series, fee_type, fee_multiplier, fee_waiver_until_ts FROM markets WHERE ticker = ?", (ticker,)
    ).fetchone()
    if row is None:
        return fees.for_market(None)
    series, fee_type, mult, waiver = row
    try:
        m = None if mult is None else Decimal(mult) if type(mult) is str else None
        ok = (
            type(series) is str
            and (fee_type is None or type(fee_type) is str)
            and (mult is None or (m is not None and m.is_finite() and 0 <= m <= 100))
            and (waiver is None or (type(waiver) is int and 0 < waiver <= MAX_TS_MS))
        )
    except ArithmeticError:
        ok = False
    if not ok:
        raise corrupt("markets", ticker[:40], "fee columns Kakashi cannot have written")
    return fees.terms(series, m, fee_type, waiver)


def _level_units(levels: Any) -> tuple[list[int], list[int]]:
    """Stored [price, qty] levels ("0.4230", "13.00"; before v4 "0.42", 13) -> centicents, hundredths."""
    return ([price_to_cc(Decimal(p)) for p, _q in levels], [count_to_hundredths(Decimal(str(q))) for _p, q in levels])


def snapshot_from_row(
    ticker: str,
    ts: int,
    bid_cc: int | None,
    ask_cc: int | None,
    last_cc: int | None,
    volume_hundredths: int | None,
    book: str,
) -> Quote:
    """A stored snapshot row as the Quote it was (the store's own rows: not validated again, but
    a price outside [0, 1] or a count outside SQLite's integers, which Kakashi cannot have
    stored, is a ValueError: it would mark a position at it)."""
    yc: list[int] = []
    yq: list[int] = []
    nc: list[int] = []
    nq: list[int] = []
    if book:
        b = json.loads(book)
        yc, yq = _level_units(b.get("yes", []))
        nc, nq = _level_units(b.get("no", []))
    for cc in (bid_cc, ask_cc, last_cc, *yc, *nc):
        if cc is not None and (type(cc) is not int or not 0 <= cc <= CC_PER_DOLLAR):
            raise ValueError(f"price {str(cc)[:20]} cc is outside [0, 1]")
    for h in (volume_hundredths or 0, *yq, *nq):
        if type(h) is not int or not 0 <= h < 2**63:
            raise ValueError(f"count {str(h)[:20]} is outside 0..2^63-1 hundredths")
    return Quote(ticker, ts, bid_cc, ask_cc, last_cc, volume_hundredths or 0, (yc, yq, nc, nq), book or "")
