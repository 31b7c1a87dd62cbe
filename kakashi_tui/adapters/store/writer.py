"""The one writer (``Store``): SQLite in WAL mode, one ``BEGIN IMMEDIATE`` transaction per tick.

The ledger is append-only and every entry has a unique key; bankroll, positions and PnL
are derived from it. Each engine tick is written in one ``BEGIN IMMEDIATE`` transaction,
so a crash (even ``kill -9``) leaves the database at the end of the last whole tick.

Opening is careful, in this order and before anything is written: the writer locks the
database file itself (``flock`` on its inode, so a symlink, a hard link or a deleted lock
file cannot let a second writer in); a SQLite file that is not Kakashi's is refused
untouched; a schema newer than this code is refused; an older one is migrated (``migrations``).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import peewee as pw

from kakashi_tui.adapters.crashlog import owner_only, sqlite_files
from kakashi_tui.adapters.store.chain import CHAINED, GENESIS, link, outcome_market, read_head, write_head
from kakashi_tui.adapters.store.controls import (
    Control,
    ControlValue,
    RunRecord,
    check_control_rows,
    control_text,
    control_value,
    read_run,
)
from kakashi_tui.adapters.store.migrations import SCHEMA_VERSION, upgrade
from kakashi_tui.adapters.store.rows import (
    _SIDE_TEXT,
    _level_units,
    account_from_ledger,
    checked_tick_ts,
    corrupt,
    read_latest_snapshot,
    read_ledger,
    real_to_price,
    refuse_special_file,
    verify_ledger,
)
from kakashi_tui.adapters.store.schema import (
    KAKASHI_MARKERS,
    MODELS,
    EventRow,
    FillRow,
    foreign_object,
)
from kakashi_tui.adapters.userfiles import refuse_unless_regular
from kakashi_tui.core.errors import StoreError
from kakashi_tui.core.ledger import Account, LedgerEntry
from kakashi_tui.core.models import GRID, Estimate, Fill, Market, Quote, Side, TradeDecision, qty_text
from kakashi_tui.core.money import count_to_hundredths, price_to_cc
from kakashi_tui.core.orders import OrderFill, PaperOrder, Role, Trigger
from kakashi_tui.core.plan import Condition, PlanError, Sample, conditions_json
from kakashi_tui.core.queue import FillsState, QueuePlace
from kakashi_tui.core.shadows import ShadowState

LOCK_WAIT_S = 1.0  # how long a new writer waits for the file lock before saying who holds it


def now_wall_ms() -> int:
    return int(time.time() * 1000)


def _order_fill(fill_id: int, r: Sequence[Any], table: str = "fills") -> OrderFill:
    """A paper order's fill as its ``fills`` row keeps it (ts, role, trigger, contracts_hundredths,
    value_cc, fee_cc, levels, fee_exact), for a restart; a row Kakashi cannot have written is corrupt.
    ``fee_exact`` NULL (a row before v11) reads as its rounded fee: no fraction carried over."""
    ts, role, trigger, h, value, fee, levels, exact = r
    try:
        prices, counts = _level_units(json.loads(levels))
        return OrderFill(
            ts,
            Role(role),
            Trigger(trigger),
            int(h),
            int(value),
            int(fee),
            tuple(zip(prices, counts)),
            Decimal(fee) / 10_000 if exact is None else Decimal(exact),
        )
    except (TypeError, ValueError, ArithmeticError) as e:
        raise corrupt(table, fill_id, f"not a paper order's fill Kakashi wrote ({e})") from None


def db_trouble(e: BaseException) -> str | None:
    """A database error in the operator's words when it is the disk's doing: ``disk full (...)`` or
    ``read-only (...)``, with SQLite's own words; None for anything else. The cause is looked for
    down the exception's chain: on a full disk SQLite rolls the transaction back itself, and the
    rollback that follows fails with "cannot rollback - no transaction is active", hiding it."""
    cur: BaseException | None = e
    for _ in range(8):
        if cur is None:
            return None
        msg = str(cur)
        errno_ = cur.errno if isinstance(cur, OSError) else None
        if errno_ == errno.ENOSPC or "database or disk is full" in msg:
            return f"disk full ({msg})"
        if errno_ == errno.EROFS or "readonly database" in msg:
            return f"read-only ({msg})"
        cur = cur.__cause__ or cur.__context__
    return None


class Store:
    """One SQLite file. ``writer=True`` takes the single-writer lock on the file itself."""

    def __init__(self, path: str | os.PathLike[str], writer: bool = True, lock_wait: float | None = None) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._head_due = False  # ledger entries committed since the head was last written
        refuse_special_file(self.path)  # a pipe or device: before anything opens, creates or chmods it
        if self.path.parent and not self.path.parent.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create database folder {self.path.parent}: {e.strerror}", 2) from e
        if writer:
            self._take_lock(
                LOCK_WAIT_S if lock_wait is None else lock_wait
            )  # creates an empty file owner-only (0600) if there is none
        try:
            self._refuse_foreign_or_newer()  # read-only, before even the WAL pragma touches the file
        except StoreError:
            self.close()
            raise
        owner_only(*sqlite_files(self.path))  # before SQLite writes: new WAL/SHM files copy the DB's mode
        self.db = pw.SqliteDatabase(
            str(self.path),
            pragmas={
                "journal_mode": "wal",
                "synchronous": "normal",
                "foreign_keys": 1,
                "busy_timeout": 5000,
                # a savepoint's sub-journal (each replayed tick is one) in memory, not a temp file
                "temp_store": "memory",
            },
            timeout=5,
        )
        try:
            if writer:  # the models are process-global: only the one writer binds them
                self.db.bind(MODELS, bind_refs=False, bind_backrefs=False)
            self.db.connect(reuse_if_open=True)
            self.db.execute_sql("SELECT count(*) FROM sqlite_master").fetchone()
            owner_only(*sqlite_files(self.path))  # the WAL and SHM too, whatever mode an old file had
            if self.db.table_exists("control"):
                check_control_rows(self.db.connection())
            if writer:
                with self.atomic():  # one transaction: a failed step leaves the file as it was
                    upgrade(self.db)
                # refuse a ledger that is not the one Kakashi wrote before trading on it (its
                # rows, chain and head; `status` and the report also reconcile it); a file with
                # no head yet (new, migrated, copied without it) gets one
                verify_ledger(self.db.connection(), self.path, reconciled=False)
                if read_head(self.path) is None:
                    write_head(self.path, self.db.connection())
        except (pw.DatabaseError, sqlite3.DatabaseError) as e:
            self.close()
            msg = str(e)
            if "locked" in msg or "busy" in msg:
                raise StoreError(f"database {self.path} is locked by another process; try again", 1) from e
            if trouble := db_trouble(e):  # the file is fine; the disk will not take a write
                raise StoreError(f"database {self.path}: {trouble}", 1 if "full" in trouble else 2) from e
            raise StoreError(f"database {self.path} is unreadable or not a Kakashi database ({msg})", 2) from e
        except OSError as e:
            self.close()
            raise StoreError(f"cannot open database {self.path}: {e.strerror}", 2) from e
        except StoreError:
            self.close()
            raise

    def _refuse_foreign_or_newer(self) -> None:
        """Before anything is written (a read-only look): a file with tables but not Kakashi's,
        or a schema newer than this code, is left exactly as it is. So is one whose WAL or
        shared-memory file is a pipe, a device or a folder (SQLite would fail every write)."""
        for side in sqlite_files(self.path)[1:]:
            try:
                refuse_unless_regular(os.stat(side), side)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:
                raise StoreError(f"cannot open database {self.path}: {side}: {e.strerror}; left untouched", 2) from None
        if not self.path.exists() or self.path.stat().st_size == 0:
            return  # new
        try:
            con = sqlite3.connect(f"file:{self.path.resolve()}?mode=ro", uri=True, timeout=5)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"database {self.path} is unreadable ({e}); left untouched", 2) from None
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            planted = foreign_object(con)
            row = (
                con.execute("SELECT value FROM control WHERE key = ?", (Control.SCHEMA_VERSION.value,)).fetchone()
                if "control" in tables
                else None
            )
        except sqlite3.DatabaseError as e:
            msg = str(e)
            if "locked" in msg or "busy" in msg:
                raise StoreError(f"database {self.path} is locked by another process; try again", 1) from None
            raise StoreError(
                f"database {self.path} is unreadable or not a Kakashi database ({msg}); left untouched", 2
            ) from None
        finally:
            con.close()
        user_tables = {t for t in tables if not t.startswith("sqlite_")}
        if planted is not None:
            raise StoreError(f"{self.path} holds {planted}, which Kakashi never creates; left untouched", 2)
        if user_tables and not KAKASHI_MARKERS <= user_tables:
            raise StoreError(f"{self.path} is a SQLite file but not a Kakashi database; left untouched", 2)
        if row is not None:
            try:
                version = int(row[0]) if row else 0
            except (TypeError, ValueError):
                raise StoreError(
                    f"{self.path} has an unreadable schema_version {row[0]!r}; left untouched", 2
                ) from None
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this Kakashi "
                    f"({SCHEMA_VERSION}); upgrade Kakashi. Left untouched",
                    2,
                )

    def _take_lock(self, wait_s: float) -> None:
        """Lock the database file's inode (flock): whatever path reaches it (a symlink, a hard
        link), a second writer is refused. SQLite's own locks are POSIX locks, which flock does
        not touch. The descriptor stays open until close(), after SQLite's connections."""
        try:  # O_NONBLOCK: a pipe swapped in since the check above is not waited on, but refused
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StoreError(f"cannot open database {self.path}: {e.strerror}", 2) from e
        try:
            refuse_unless_regular(os.fstat(fd), self.path)
        except OSError as e:
            os.close(fd)
            raise StoreError(f"cannot open database {self.path}: {e.strerror}; left untouched", 2) from None
        deadline = time.monotonic() + wait_s  # a `kakashi kill` applying itself holds it for ms
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreError(f"another Kakashi is already writing to {self.path}; stop it first", 1) from e
                time.sleep(0.02)
        self._lock_fd = fd

    def close(self) -> None:
        db: pw.SqliteDatabase | None = getattr(self, "db", None)
        if db is not None and not db.is_closed():
            db.close()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def atomic(self) -> Iterator[Any]:
        """One transaction (a savepoint when nested). At the top it is ``BEGIN IMMEDIATE``: it
        takes SQLite's write lock before the first read, so a read-then-write never fails half
        way with "database is locked" (another process's short write is waited out by
        busy_timeout instead). After a commit that added ledger entries, the chain's head is
        written beside the database (store/chain.py): never ahead of what is committed."""
        with self.db.atomic("IMMEDIATE") as txn:
            yield txn
        if self._head_due and not self.db.in_transaction():
            self._head_due = False
            write_head(self.path, self.db.connection())

    # -- control state --------------------------------------------------------------
    # Control reads and writes happen every tick: plain SQL on the connection (this thread's,
    # inside the caller's transaction), not a query built per call.
    def get_control(self, key: Control, default: str | None = None) -> str | None:
        """The stored text of a control (see ``control`` for its typed value). Only the keys
        ``Control`` names exist: any other raises ValueError (a typo is a bug, not a miss)."""
        row = self.db.connection().execute("SELECT value FROM control WHERE key = ?", (Control(key).value,)).fetchone()
        return default if row is None else row[0]

    def control(self, key: Control) -> ControlValue | None:
        """A control's typed value (None when unset)."""
        return control_value(key, self.get_control(key))

    def controls(self, keys: Iterable[Control]) -> dict[Control, ControlValue]:
        """Several controls' typed values in one query (unset ones are absent)."""
        wanted = {k.value: k for k in keys}
        cur = self.db.connection().execute(
            f"SELECT key, value FROM control WHERE key IN ({', '.join('?' * len(wanted))})", list(wanted)
        )
        out: dict[Control, ControlValue] = {}
        for name, text in cur.fetchall():
            key = wanted[name]
            if (value := control_value(key, text)) is not None:
                out[key] = value
        return out

    def set_control(self, key: Control, value: ControlValue) -> None:
        self.set_controls({key: value})

    def set_controls(self, values: Mapping[Control, ControlValue]) -> None:
        """Values are checked against their key's type and stored as text (bools as 1/0)."""
        rows = [(Control(k).value, control_text(Control(k), v)) for k, v in values.items()]
        self.db.connection().executemany(
            "INSERT INTO control (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            rows,
        )

    def clear_controls(self, keys: Iterable[Control]) -> None:
        """Remove these controls (read back as unset)."""
        self.db.connection().executemany("DELETE FROM control WHERE key = ?", [(Control(k).value,) for k in keys])

    def run_record(self) -> RunRecord:
        """What the last run started on this database recorded (``controls.read_run``)."""
        return read_run(self.db.connection())

    def set_kill_switch(self, thrown: bool, reason: str, ts: int) -> None:
        """The kill switch's persisted state and its event, together (one transaction)."""
        with self.atomic():
            self.set_controls({Control.KILL_SWITCH: thrown, Control.KILL_REASON: reason if thrown else ""})
            self.add_event(ts, "kill_switch" if thrown else "rearm", reason)

    def set_paused(self, paused: bool, ts: int, origin: str, reason: str = "") -> None:
        """Pause or resume; ``reason``: why the engine paused itself (a plan's kill condition),
        kept in ``pause_reason`` until a resume clears it (an operator's pause has none)."""
        with self.atomic():
            self.set_control(Control.PAUSED, paused)
            if paused and reason:
                self.set_control(Control.PAUSE_REASON, reason)
            else:
                self.clear_controls([Control.PAUSE_REASON])
            self.add_event(ts, "pause" if paused else "resume", origin)  # (a plan's reason: its plan_kill event)

    # -- plans (core/plan.py) -------------------------------------------------------
    def add_plan(
        self,
        *,
        created_ms: int,
        hypothesis: str,
        settings: str,
        beliefs: str,
        sample: Sample,
        kill: Sequence[Condition],
        success: Sequence[Condition],
    ) -> int:
        """Register a plan: a new row, its trading what comes after the decisions, fills and
        ticks stored now. Returns its id."""
        with self.atomic():
            con = self.db.connection()
            marks = [
                con.execute(f"SELECT COALESCE(MAX({col}), 0) FROM {table}").fetchone()[0]
                for col, table in (("id", "decisions"), ("id", "fills"), ("tick", "ticks"))
            ]
            cur = con.execute(
                "INSERT INTO plans (created_ms, hypothesis, settings, beliefs, sample_n, sample_unit, kill, success,"
                " after_decision_id, after_fill_id, after_tick) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    created_ms,
                    hypothesis,
                    settings,
                    beliefs,
                    sample.n,
                    sample.unit,
                    conditions_json(kill),
                    conditions_json(success),
                    *marks,
                ),
            )
            pid = int(cur.lastrowid or 0)
            self.add_event(self.last_tick_ts() or created_ms, "plan", f"plan {pid} registered")
        return pid

    def plan_trading_started(self, plan_id: int) -> str | None:
        """Whether trading started on a plan: the first decision or fill after its registration,
        in words (``decision 12``), or None. A plan that does not exist raises PlanError."""
        con = self.db.connection()
        row = con.execute("SELECT after_decision_id, after_fill_id FROM plans WHERE id = ?", (plan_id,)).fetchone()
        if row is None:
            raise PlanError(f"plan: no plan {plan_id} in {self.path}")
        d = con.execute("SELECT id FROM decisions WHERE id > ? ORDER BY id LIMIT 1", (row[0],)).fetchone()
        f = con.execute("SELECT id FROM fills WHERE id > ? ORDER BY id LIMIT 1", (row[1],)).fetchone()
        if d is not None:
            return f"decision {d[0]}"
        return None if f is None else f"fill {f[0]}"

    def update_plan(
        self,
        plan_id: int,
        *,
        hypothesis: str,
        settings: str,
        beliefs: str,
        sample: Sample,
        kill: Sequence[Condition],
        success: Sequence[Condition],
    ) -> None:
        """Change a plan's study: only before trading starts on it. Once a decision or a fill
        came after it, it is fixed (PlanError): a changed plan is a new row (``add_plan``)."""
        with self.atomic():
            started = self.plan_trading_started(plan_id)
            if started is not None:
                raise PlanError(
                    f"plan {plan_id} is fixed: trading started on it ({started}); "
                    "a changed plan is a new one (kakashi plan new)"
                )
            self.db.connection().execute(
                "UPDATE plans SET hypothesis = ?, settings = ?, beliefs = ?, sample_n = ?, sample_unit = ?, kill = ?,"
                " success = ? WHERE id = ?",
                (
                    hypothesis,
                    settings,
                    beliefs,
                    sample.n,
                    sample.unit,
                    conditions_json(kill),
                    conditions_json(success),
                    plan_id,
                ),
            )
            self.add_event(self.last_tick_ts() or now_wall_ms(), "plan", f"plan {plan_id} changed before trading")

    def record_plan_kill(self, plan_id: int, ts: int, tick: int, condition: str, detail: str) -> bool:
        """A kill condition tripped: written once (False: the plan already had its outcome)."""
        cur = self.db.connection().execute(
            "UPDATE plans SET killed_ts = ?, killed_tick = ?, killed_by = ?, killed_detail = ? WHERE id = ?"
            " AND killed_ts IS NULL AND judged_ts IS NULL",
            (ts, tick, condition, detail, plan_id),
        )
        if cur.rowcount:
            self.add_event(ts, "plan_kill", f"plan {plan_id}: {condition} ({detail})")
        return bool(cur.rowcount)

    def record_plan_verdict(self, plan_id: int, ts: int, tick: int, verdict: str, detail: str) -> bool:
        """The success criteria judged at the sample: written once (False: already judged or killed)."""
        cur = self.db.connection().execute(
            "UPDATE plans SET judged_ts = ?, judged_tick = ?, verdict = ?, verdict_detail = ? WHERE id = ?"
            " AND killed_ts IS NULL AND judged_ts IS NULL",
            (ts, tick, verdict, detail, plan_id),
        )
        if cur.rowcount:
            self.add_event(ts, "plan_verdict", f"plan {plan_id}: {verdict} ({detail})")
        return bool(cur.rowcount)

    # -- requests from other processes ------------------------------------------------
    def add_request(self, kind: str, arg: str, ts: int) -> int:
        return int(
            self.db.connection()
            .execute("INSERT INTO requests (ts, kind, arg) VALUES (?, ?, ?)", (ts, kind, arg))
            .lastrowid
            or 0
        )

    def pending_requests(self) -> list[tuple[int, str, str]]:
        """(id, kind, arg) of requests not yet applied, oldest first."""
        return list(
            self.db.connection().execute("SELECT id, kind, arg FROM requests WHERE applied_tick IS NULL ORDER BY id")
        )

    def mark_requests_applied(self, ids: Sequence[int], tick: int) -> None:
        self.db.connection().executemany("UPDATE requests SET applied_tick = ? WHERE id = ?", [(tick, i) for i in ids])

    def add_event(self, ts: int, kind: str, detail: str = "") -> None:
        EventRow.create(ts=ts, kind=kind, detail=detail)

    def last_event(self, kinds: Sequence[str]) -> tuple[int, str] | None:
        """(ts, detail) of the latest event of one of ``kinds`` (a kill, a pause), or None."""
        marks = ", ".join("?" * len(kinds))
        row = self.db.execute_sql(
            f"SELECT ts, detail FROM events WHERE kind IN ({marks}) ORDER BY id DESC LIMIT 1", list(kinds)
        ).fetchone()
        return (int(row[0]), str(row[1] or "")) if row else None

    # -- market data ----------------------------------------------------------------
    def upsert_markets(self, markets: Iterable[Market], ts: int) -> None:
        rows = [
            (
                m.ticker,
                m.title,
                m.subtitle,
                m.series,
                m.event_ticker,
                m.status.value,
                m.market_type,
                m.open_ts,
                m.close_ts,
                m.result.value if m.result else None,
                None if m.settlement_value is None else str(m.settlement_value),
                m.fee_type,
                None if m.fee_multiplier is None else str(m.fee_multiplier),
                m.fee_waiver_until_ts,
                m.updated_ts,
                ts,
                m.settlement_bounds_type,
                None if m.settlement_floor is None else str(m.settlement_floor),
                m.price_ranges,
                m.exchange_index,
                m.event_exclusive,
            )
            for m in markets
        ]
        if rows:
            self.db.connection().executemany(
                "INSERT INTO markets (ticker, title, subtitle, series, event_ticker, status, market_type, open_ts,"
                " close_ts, result, settlement_value, fee_type, fee_multiplier, fee_waiver_until_ts,"
                " exchange_updated_ts, updated_ts, settlement_bounds_type, settlement_floor, price_ranges,"
                " exchange_index, event_exclusive)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (ticker) DO UPDATE SET title = excluded.title, subtitle = excluded.subtitle,"
                " series = excluded.series, event_ticker = excluded.event_ticker, status = excluded.status,"
                " market_type = excluded.market_type, open_ts = excluded.open_ts, close_ts = excluded.close_ts,"
                " result = excluded.result, settlement_value = excluded.settlement_value,"
                " fee_type = excluded.fee_type, fee_multiplier = excluded.fee_multiplier,"
                " fee_waiver_until_ts = excluded.fee_waiver_until_ts,"
                " exchange_updated_ts = excluded.exchange_updated_ts, updated_ts = excluded.updated_ts,"
                " settlement_bounds_type = excluded.settlement_bounds_type,"
                " settlement_floor = excluded.settlement_floor, price_ranges = excluded.price_ranges,"
                " exchange_index = excluded.exchange_index, event_exclusive = excluded.event_exclusive",
                rows,
            )

    _SNAPSHOT_SQL = (
        "INSERT INTO snapshots (ticker, ts, fetched_ts, yes_bid_cc, yes_ask_cc, last_cc, volume_hundredths,"
        " book, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def insert_snapshots(self, snaps: Sequence[Quote], fetched_ts: int, source: str) -> int:
        """The hot path: one executemany inside the caller's transaction, fed row by row (no
        list of rows kept alive). A Quote carries its stored forms from the check that made it."""
        self.db.connection().executemany(
            self._SNAPSHOT_SQL,
            ((s.ticker, s.ts, fetched_ts, *s.prices_cc, s.volume_hundredths, s.book_text, source) for s in snaps),
        )
        return len(snaps)

    def insert_quotes(self, quotes: Collection[tuple[Quote, int]], source: str) -> int:
        """``insert_snapshots`` for quotes fetched at different times: (quote, fetched_ts) pairs."""
        self.db.connection().executemany(
            self._SNAPSHOT_SQL,
            ((s.ticker, s.ts, f, *s.prices_cc, s.volume_hundredths, s.book_text, source) for s, f in quotes),
        )
        return len(quotes)

    def insert_rejected(self, ts: int, source: str, reason: str, payload: Any, ticker: Any = "") -> None:
        """Count a rejected row: one record per (source, ticker, reason), its count, first and last
        time and the last payload, so a bad market repeating every tick does not grow the file."""
        try:
            text = json.dumps(payload, default=str, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(payload)
        tk = ticker if isinstance(ticker, str) else ""
        tk = tk.encode("utf-8", "replace").decode("utf-8")[:200]  # a key, not the evidence (that is the payload)
        self.db.connection().execute(
            "INSERT INTO rejected_rows (source, ticker, reason, count, first_seen, last_seen, payload)"
            " VALUES (?, ?, ?, 1, ?, ?, ?) ON CONFLICT (source, ticker, reason) DO UPDATE SET"
            " count = count + 1, last_seen = excluded.last_seen, payload = excluded.payload",
            (source, tk, reason, ts, ts, text),
        )

    def insert_estimate(self, e: Estimate) -> None:
        self.db.connection().execute(
            "INSERT INTO estimates (ticker, ts, p_hat, source) VALUES (?, ?, ?, ?)",
            (e.ticker, e.ts, float(e.p_hat), e.source),
        )

    def latest_estimates(self) -> dict[str, Estimate]:
        """Each market's current belief; settled markets have none (their record stays)."""
        cur = self.db.execute_sql(
            "SELECT e.ticker, e.p_hat, e.source, e.ts FROM estimates e JOIN"
            " (SELECT MAX(id) AS id FROM estimates GROUP BY ticker) m ON e.id = m.id"
            " WHERE e.ticker NOT IN (SELECT ticker FROM outcomes)"
        )
        try:
            return {
                t: Estimate(ticker=t, p_hat=cast(Decimal, real_to_price(p)), source=src, ts=ts)  # NOT NULL column
                for t, p, src, ts in cur
            }
        except (TypeError, ValueError, ArithmeticError) as e:  # pydantic's ValidationError is a ValueError
            raise corrupt(
                "estimates", "(latest)", f"not an estimate Kakashi wrote ({str(e).splitlines()[0][:80]})"
            ) from None

    PRUNE_BATCH = 50_000  # rows deleted per transaction: a prune's WAL stays small, a kill loses one batch

    def prune_market_data(self, keep_days: int) -> tuple[int, int, int | None]:
        """Remove quotes (snapshots) and beliefs (estimates) older than ``keep_days`` days before
        the newest quote (the engine's clock), keeping each market's newest quote (its mark:
        ``read_latest_snapshot``) and newest belief (``latest_estimates``) among them. Returns
        (quotes removed, beliefs removed, the cut-off time; None when there are no quotes).
        In batches, each its own transaction. The file keeps its size: SQLite reuses the freed
        pages for what comes next (a ``VACUUM`` with no engine running gives them back)."""
        con = self.db.connection()
        newest = con.execute("SELECT MAX(ts) FROM snapshots").fetchone()[0]
        if not isinstance(newest, int):
            return 0, 0, None
        cut = newest - keep_days * 86_400_000
        con.execute("CREATE TEMP TABLE IF NOT EXISTS prune_keep (id INTEGER PRIMARY KEY)")
        removed = []
        try:
            for table, keep_sql in (
                (
                    "snapshots",
                    "SELECT MAX(s.id) FROM snapshots s JOIN (SELECT ticker, MAX(ts) AS ts FROM snapshots"
                    " WHERE ts < ? GROUP BY ticker) m ON s.ticker = m.ticker AND s.ts = m.ts GROUP BY s.ticker",
                ),
                ("estimates", "SELECT MAX(id) FROM estimates WHERE ts < ? GROUP BY ticker"),
            ):
                con.execute("DELETE FROM prune_keep")
                con.execute(f"INSERT INTO prune_keep (id) {keep_sql}", (cut,))
                n = 0
                while True:
                    with self.atomic():
                        cur = con.execute(
                            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE ts < ?"
                            " AND id NOT IN (SELECT id FROM prune_keep) LIMIT ?)",
                            (cut, self.PRUNE_BATCH),
                        )
                    n += cur.rowcount
                    if cur.rowcount < self.PRUNE_BATCH:
                        break
                removed.append(n)
        finally:
            con.execute("DROP TABLE IF EXISTS temp.prune_keep")
        return removed[0], removed[1], cut

    def latest_snapshot(self, ticker: str) -> Quote | None:
        return read_latest_snapshot(self.db.connection(), ticker)

    def market_event(self, ticker: str) -> str:
        """The stored market's ``event_ticker`` ("" when it names none or is not stored)."""
        row = self.db.execute_sql("SELECT event_ticker FROM markets WHERE ticker = ?", (ticker,)).fetchone()
        return row[0] if row and isinstance(row[0], str) else ""

    # -- decisions, fills, ledger ----------------------------------------------------
    _DECISION_SQL = (
        "INSERT INTO decisions (ts, tick, ticker, side, contracts_hundredths, limit_price_cc, best_ask_cc,"
        " p_hat, ev, worst_case_cc, equity_cc, accepted, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    @staticmethod
    def _decision_row(d: TradeDecision, tick: int) -> tuple[Any, ...]:
        return (
            d.ts,
            tick,
            d.ticker,
            _SIDE_TEXT[d.side],
            count_to_hundredths(d.contracts),
            price_to_cc(d.limit_price),
            price_to_cc(d.best_ask),
            float(d.p_hat),
            float(d.ev_per_contract),
            d.worst_case_cc,
            d.equity_cc,
            int(d.accepted),
            d.reason,
        )

    def insert_decision(self, d: TradeDecision, tick: int) -> int:
        return self.db.connection().execute(self._DECISION_SQL, self._decision_row(d, tick)).lastrowid

    def insert_decisions(self, ds: Sequence[TradeDecision], tick: int) -> None:
        """Many decisions in order, one executemany (the ones no fill refers to)."""
        if ds:
            self.db.connection().executemany(self._DECISION_SQL, [self._decision_row(d, tick) for d in ds])

    def insert_fill(
        self,
        f: Fill,
        decision_id: int | None,
        order_id: int | None = None,
        role: str | None = None,
        trigger: str | None = None,
        fee_exact: Decimal | None = None,
    ) -> int:
        """A fill's row (``fee_exact``: a paper order's fill's fee before rounding, v11)."""
        return FillRow.insert(
            decision_id=decision_id,
            ts=f.ts,
            ticker=f.ticker,
            side=f.side.value,
            action=f.action,
            requested_hundredths=count_to_hundredths(f.requested),
            contracts_hundredths=count_to_hundredths(f.contracts),
            value_cc=f.value_cc,
            fee_cc=f.fee_cc,
            levels=json.dumps([[str(p), qty_text(count_to_hundredths(q))] for p, q in f.levels]),
            order_id=order_id,
            role=role,
            trigger=trigger,
            fee_exact=None if fee_exact is None else format(fee_exact, "f"),
        ).execute()

    # -- paper orders (issue #23): one row each, never changed; their life is order_events --------
    def insert_order(self, o: PaperOrder, mode: str, queue_model: str, decision_id: int | None) -> int:
        """A new order's row (its ``id`` is the row's id: the caller made it with ``next_order_id``)."""
        return (
            self.db.connection()
            .execute(
                "INSERT INTO orders (id, ts, ticker, side, limit_cc, quantity_hundredths, tif, post_only, expires_ts,"
                " insert_latency_ms, cancel_latency_ms, mode, queue_model, decision_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    int(o.id),
                    o.decided_ts,
                    o.ticker,
                    o.side.value,
                    o.limit_cc,
                    o.quantity_hundredths,
                    o.tif.value,
                    int(o.post_only),
                    o.expires_ts,
                    o.insert_latency_ms,
                    o.cancel_latency_ms,
                    mode,
                    queue_model,
                    decision_id,
                ),
            )
            .lastrowid
        )

    def next_order_id(self) -> int:
        """The id the next order's row gets (the one writer's: nothing else inserts orders)."""
        row = self.db.connection().execute("SELECT MAX(id) FROM orders").fetchone()
        return (row[0] or 0) + 1

    def insert_order_events(self, rows: Sequence[tuple[int, int, str, str, int | None]]) -> None:
        """Order events as (order id, ts, state, reason, fill id), in order."""
        if rows:
            self.db.connection().executemany(
                "INSERT INTO order_events (order_id, ts, state, reason, fill_id) VALUES (?, ?, ?, ?, ?)", rows
            )

    def live_orders(
        self,
    ) -> list[tuple[tuple[Any, ...], list[tuple[int, str, str, OrderFill | None]], tuple[Any, ...] | None]]:
        """The orders not done (no filled, cancelled, expired or rejected event), oldest first: each
        (its row: id, ts, ticker, side, limit_cc, quantity_hundredths, tif, post_only, expires_ts,
        insert_latency_ms, cancel_latency_ms, decision_id; its events as (ts, state, reason, the
        fill a fill event booked: its ``fills`` row, else None) in order; its decision's
        (limit_price_cc, best_ask_cc), None without one)."""
        con = self.db.connection()
        rows = con.execute(
            "SELECT o.id, o.ts, o.ticker, o.side, o.limit_cc, o.quantity_hundredths, o.tif, o.post_only,"
            " o.expires_ts, o.insert_latency_ms, o.cancel_latency_ms, o.decision_id FROM orders o"
            " WHERE NOT EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = o.id"
            " AND e.state IN ('filled', 'cancelled', 'expired', 'rejected')) ORDER BY o.id"
        ).fetchall()
        out = []
        for r in rows:
            events = con.execute(
                "SELECT e.ts, e.state, e.reason, e.fill_id, f.ts, f.role, f.trigger, f.contracts_hundredths,"
                " f.value_cc, f.fee_cc, f.levels, f.fee_exact FROM order_events e"
                " LEFT JOIN fills f ON f.id = e.fill_id WHERE e.order_id = ? ORDER BY e.id",
                (r[0],),
            ).fetchall()
            d = None
            if r[11] is not None:
                d = con.execute("SELECT limit_price_cc, best_ask_cc FROM decisions WHERE id = ?", (r[11],)).fetchone()
            got = [(e[0], e[1], e[2], None if e[3] is None else _order_fill(e[3], e[4:])) for e in events]
            out.append((tuple(r), got, None if d is None else tuple(d)))
        return out

    # -- a restart's queue places (v11): core/queue.py FillsState, as of the last committed tick ------
    def fill_states(self) -> dict[str, FillsState]:
        """Each market's stored fill-model state (its resting orders' places, gap, consumption)."""
        con = self.db.connection()
        out: dict[str, FillsState] = {}
        for oid, ticker, ahead, level, traded in con.execute(
            "SELECT order_id, ticker, ahead_hundredths, level_hundredths, traded_hundredths FROM order_queues"
            " ORDER BY order_id"
        ):
            st = out.setdefault(ticker, FillsState({}))
            st.places[str(oid)] = QueuePlace(ahead, level, traded)
        for ticker, gap, consumed in con.execute("SELECT ticker, gap, consumed FROM market_fills ORDER BY ticker"):
            try:
                used = tuple((Side(sd), int(c), int(size), int(n)) for sd, c, size, n in json.loads(consumed))
            except (TypeError, ValueError) as e:
                raise corrupt("market_fills", ticker[:40], f"consumed is not what Kakashi writes ({e})") from None
            out[ticker] = FillsState(out.get(ticker, FillsState({})).places, bool(gap), used)
        return out

    def write_fill_states(self, states: Mapping[str, FillsState], before: Mapping[str, FillsState]) -> None:
        """Store ``states`` in place of ``before`` (what the store holds: the last call's, or
        ``fill_states()``): only what changed is written (inside the caller's transaction)."""
        con = self.db.connection()
        gone_orders = [
            (int(oid),)
            for t, st in before.items()
            for oid in st.places
            if oid not in (states[t].places if t in states else {})
        ]
        con.executemany("DELETE FROM order_queues WHERE order_id = ?", gone_orders)
        places = []
        for t, st in states.items():
            old = before[t].places if t in before else {}
            for oid, p in st.places.items():
                if old.get(oid) != p:
                    places.append((int(oid), t, p.ahead, p.level, p.traded))
        con.executemany(
            "INSERT INTO order_queues (order_id, ticker, ahead_hundredths, level_hundredths, traded_hundredths)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET ticker = excluded.ticker,"
            " ahead_hundredths = excluded.ahead_hundredths, level_hundredths = excluded.level_hundredths,"
            " traded_hundredths = excluded.traded_hundredths",
            places,
        )

        def market(st: FillsState | None) -> tuple[bool, tuple[tuple[Side, int, int, int], ...]] | None:
            return None if st is None or not (st.gap or st.consumed) else (st.gap, st.consumed)

        for t in sorted(before.keys() | states.keys()):
            new, was = market(states.get(t)), market(before.get(t))
            if new == was:
                continue
            if new is None:
                con.execute("DELETE FROM market_fills WHERE ticker = ?", (t,))
            else:
                text = json.dumps([[sd.value, c, size, n] for sd, c, size, n in new[1]], separators=(",", ":"))
                con.execute(
                    "INSERT INTO market_fills (ticker, gap, consumed) VALUES (?, ?, ?) ON CONFLICT (ticker)"
                    " DO UPDATE SET gap = excluded.gap, consumed = excluded.consumed",
                    (t, int(new[0]), text),
                )

    # -- the band (issue #23 item 7): the orders under the other queue models ------------------
    def insert_shadow_events(self, rows: Sequence[tuple[int, str, int, str, str, OrderFill | None]]) -> None:
        """Shadow events as (order id, model, ts, state, reason, the fill when it is one), in order."""
        if rows:
            out = []
            for oid, model, ts, state, reason, f in rows:
                fill: tuple[Any, ...] = (None,) * 7
                if f is not None:
                    levels = json.dumps([[str(GRID[c]), qty_text(h)] for c, h in f.levels])
                    fill = (f.role.value, f.trigger.value, f.hundredths, f.value_cc, f.fee_cc, levels)
                    fill += (format(f.fee_exact, "f"),)
                out.append((oid, model, ts, state, reason, *fill))
            self.db.connection().executemany(
                "INSERT INTO shadow_events (order_id, model, ts, state, reason, role, trigger, contracts_hundredths,"
                " value_cc, fee_cc, levels, fee_exact) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                out,
            )

    def live_shadow_orders(
        self,
    ) -> list[tuple[tuple[Any, ...], str, list[tuple[int, str, str, OrderFill | None]]]]:
        """The shadow copies not done (no filled, cancelled, expired or rejected event under their
        model), by order id then model: each (its order's row: id, ts, ticker, side, limit_cc,
        quantity_hundredths, tif, post_only, expires_ts, insert_latency_ms, cancel_latency_ms;
        the model; its events as (ts, state, reason, the fill when it is one) in order)."""
        con = self.db.connection()
        live = con.execute(
            "SELECT DISTINCT s.order_id, s.model FROM shadow_events s WHERE NOT EXISTS (SELECT 1 FROM shadow_events e"
            " WHERE e.order_id = s.order_id AND e.model = s.model"
            " AND e.state IN ('filled', 'cancelled', 'expired', 'rejected')) ORDER BY s.order_id, s.model"
        ).fetchall()
        out = []
        for oid, model in live:
            row = con.execute(
                "SELECT id, ts, ticker, side, limit_cc, quantity_hundredths, tif, post_only, expires_ts,"
                " insert_latency_ms, cancel_latency_ms FROM orders WHERE id = ?",
                (oid,),
            ).fetchone()
            if row is None:
                continue
            events = con.execute(
                "SELECT id, ts, state, reason, ts, role, trigger, contracts_hundredths, value_cc, fee_cc, levels,"
                " fee_exact FROM shadow_events WHERE order_id = ? AND model = ? ORDER BY id",
                (oid, model),
            ).fetchall()
            got = [
                (e[1], e[2], e[3], None if e[7] is None else _order_fill(e[0], e[4:], "shadow_events")) for e in events
            ]
            out.append((tuple(row), model, got))
        return out

    def shadow_fill_states(self) -> dict[tuple[str, str], ShadowState]:
        """Each (market, model)'s stored shadow state (``write_shadow_fill_states``)."""
        out = {}
        for ticker, model, text in self.db.connection().execute("SELECT ticker, model, state FROM shadow_fills"):
            try:
                d = json.loads(text)
                places = {str(o): QueuePlace(a, int(lv), int(tr)) for o, a, lv, tr in d["places"]}
                used = tuple((Side(sd), int(c), int(size), int(n)) for sd, c, size, n in d["consumed"])
                seed = d["seed"]
                if not (seed is None or isinstance(seed, str)) or type(d["drawn"]) is not int:
                    raise ValueError("seed or drawn")
                out[(ticker, model)] = ShadowState(FillsState(places, bool(d["gap"]), used), seed, d["drawn"])
            except (TypeError, ValueError, KeyError) as e:
                raise corrupt("shadow_fills", f"{ticker[:40]} {model[:20]}", f"not what Kakashi writes ({e})") from None
        return out

    def write_shadow_fill_states(
        self, states: Mapping[tuple[str, str], ShadowState], before: Mapping[tuple[str, str], ShadowState]
    ) -> None:
        """Store ``states`` in place of ``before`` (what the store holds): only what changed."""
        con = self.db.connection()
        con.executemany("DELETE FROM shadow_fills WHERE ticker = ? AND model = ?", sorted(before.keys() - states))
        rows = []
        for (t, m), st in sorted(states.items()):
            if before.get((t, m)) == st:
                continue
            f = st.fills
            text = {
                "places": [[int(o), p.ahead, p.level, p.traded] for o, p in sorted(f.places.items())],
                "gap": f.gap,
                "consumed": [[sd.value, c, size, n] for sd, c, size, n in f.consumed],
                "seed": st.seed,
                "drawn": st.drawn,
            }
            rows.append((t, m, json.dumps(text, separators=(",", ":"))))
        con.executemany(
            "INSERT INTO shadow_fills (ticker, model, state) VALUES (?, ?, ?)"
            " ON CONFLICT (ticker, model) DO UPDATE SET state = excluded.state",
            rows,
        )

    def append_ledger(self, entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
        """Append entries; an entry whose key is already there is skipped (exactly-once). Each
        carries its link of the hash chain (store/chain.py), in the same transaction.

        Returns the entries actually written.
        """
        conn = self.db.connection()
        last = conn.execute("SELECT id, chain FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
        next_id, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        written = []
        for e in entries:
            row = (
                next_id,
                e.ts,
                e.kind.value,
                e.ticker,
                e.side.value if e.side else None,
                count_to_hundredths(e.contracts),
                e.amount_cc,
                e.key,
            )
            chain = link(prev, *row)
            cur = conn.execute(
                f"INSERT OR IGNORE INTO ledger ({CHAINED}, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*row, chain)
            )
            if cur.rowcount == 1:
                written.append(e)
                next_id, prev = next_id + 1, chain
        if written:
            self._head_due = True
        return written

    def ledger_entries(self) -> Iterator[LedgerEntry]:
        return read_ledger(self.db.connection())

    def account(self) -> Account:
        return account_from_ledger(self.db.connection())

    def record_outcome(self, m: Market, ts: int) -> None:
        """A settled market's status and result: first seen at ``ts``, updated when amended."""
        assert m.result is not None
        self.db.connection().execute(
            "INSERT INTO outcomes (ticker, status, result, settlement_value, ts, updated_ts)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ticker) DO UPDATE SET status = excluded.status,"
            " result = excluded.result, settlement_value = excluded.settlement_value,"
            " updated_ts = excluded.updated_ts WHERE status != excluded.status OR result != excluded.result"
            " OR settlement_value IS NOT excluded.settlement_value",
            (
                m.ticker,
                m.status.value,
                m.result.value,
                None if m.settlement_value is None else str(m.settlement_value),
                ts,
                ts,
            ),
        )

    def outcome(self, ticker: str) -> Market | None:
        """A settled market's booked result as a Market (status, result, settlement value)."""
        row = (
            self.db.connection()
            .execute("SELECT status, result, settlement_value FROM outcomes WHERE ticker = ?", (ticker,))
            .fetchone()
        )
        return None if row is None else outcome_market(ticker, *row)

    def settled_tickers(self) -> set[str]:
        """Markets whose settlement is booked: never traded again."""
        return {t for (t,) in self.db.connection().execute("SELECT ticker FROM outcomes")}

    def fill_count(self) -> int:
        return int(self.db.execute_sql("SELECT COUNT(*) FROM fills").fetchone()[0])

    def last_tick_ts(self) -> int | None:
        """The engine clock at the last completed tick (for events written outside the engine)."""
        return checked_tick_ts("(latest)", self.db.execute_sql("SELECT MAX(ts) FROM ticks").fetchone()[0])

    def recent_equity(self, n: int) -> list[int]:
        cur = self.db.execute_sql("SELECT equity_cc FROM ticks ORDER BY tick DESC LIMIT ?", (n,))
        return [r[0] for r in cur][::-1]

    def equity_before(self, ts: int) -> int | None:
        """The equity the last tick before ``ts`` recorded (None: no tick before it)."""
        row = self.db.execute_sql(
            "SELECT equity_cc FROM ticks WHERE ts < ? ORDER BY ts DESC, tick DESC LIMIT 1", (ts,)
        ).fetchone()
        return None if row is None else int(row[0])

    def ledger_sums_since(self, ts: int) -> dict[str, int]:
        """Each kind of ledger entry's amount summed, from ``ts`` on (performance.py)."""
        cur = self.db.execute_sql("SELECT kind, SUM(amount_cc) FROM ledger WHERE ts >= ? GROUP BY kind", (ts,))
        return {str(kind): int(total) for kind, total in cur}

    def ledger_kinds_between(self, start: int, end: int) -> dict[str, tuple[int, int]]:
        """Each kind of ledger entry's (amount summed, entries) from ``start`` up to ``end`` (performance.py)."""
        cur = self.db.execute_sql(
            "SELECT kind, SUM(amount_cc), COUNT(*) FROM ledger WHERE ts >= ? AND ts < ? GROUP BY kind", (start, end)
        )
        return {str(kind): (int(total), int(n)) for kind, total, n in cur}

    _TICK_FIELDS = (
        "tick",
        "ts",
        "wall_ms",
        "saved",
        "rejected",
        "decisions",
        "fills",
        "settled",
        "errors",
        "latency_ms",
        "cash_cc",
        "equity_cc",
    )

    def insert_tick(self, **fields: Any) -> None:
        self.db.connection().execute(
            f"INSERT OR REPLACE INTO ticks ({', '.join(self._TICK_FIELDS)}) VALUES ({', '.join('?' * 12)})",
            [fields[k] for k in self._TICK_FIELDS],
        )
