"""Requests from other processes: ``kakashi kill``, ``pause`` and ``resume`` from another
terminal (a request row the running engine adopts on its next tick, or applied here when none
runs), and ``kakashi rearm`` with no engine running.

Apart from the service and the engine (the import-linter contract keeps it so): an operator
throws the kill switch in a hurry, and this module imports only the store and the commands.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable

import peewee

from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.adapters.store.writer import Store, db_trouble, now_wall_ms
from kakashi_tui.core.errors import ConfigError, KakashiError, StoreError
from kakashi_tui.trading.commands import REQUEST_KINDS, Kill, Pause, Resume, from_request

REQUEST_RETRIES = 5


def send_request(path: str, kind: str, arg: str = "") -> str:
    """``kakashi kill/pause/resume`` from another process: write a request row that the
    running engine adopts on its next tick. With no engine running, apply it here, as the
    writer, the same way. Never fails the engine; a busy database is waited out briefly and
    then reported in one line. Returns what happened, for the operator."""
    if kind not in REQUEST_KINDS:
        raise ConfigError(f"unknown request {kind!r}")
    if not os.path.exists(path):
        raise ConfigError(f"no database at {path}")
    last: Exception | None = None
    for attempt in range(REQUEST_RETRIES):
        try:
            try:
                store = Store(path, writer=True, lock_wait=0)  # no engine running: apply it ourselves
                engine_running = False
            except StoreError as e:
                if "already writing" not in str(e):
                    raise
                store = Store(path, writer=False)
                engine_running = True
            try:
                ts = store.last_tick_ts() or now_wall_ms()  # on the engine's clock, like its own events
                with store.atomic():
                    rid = store.add_request(kind, arg, ts)
                    if not engine_running:
                        _apply_request_offline(store, rid, kind, arg, ts)
            finally:
                store.close()
            if engine_running:
                return "the running engine applies it on its next tick"
            return "applied (no engine is running on this database)"
        except (peewee.OperationalError, sqlite3.OperationalError) as e:
            if trouble := db_trouble(e):  # a full or read-only disk is not busy: waiting will not help
                raise KakashiError(f"database {path}: {trouble}; the {kind} request was not written") from None
            last = e
            time.sleep(0.05 * (attempt + 1))
    raise KakashiError(f"database {path} stayed busy; the {kind} request was not written ({last}); try again")


def rearm_offline(path: str, confirm: Callable[[str], bool]) -> str:
    """``kakashi rearm``: only with no engine running (a re-arm is a deliberate act on the
    desk that runs); ``confirm(reason)`` is asked while the writer lock is held."""
    if not os.path.exists(path):
        raise ConfigError(f"no database at {path}")
    try:
        store = Store(path, lock_wait=0)
    except StoreError as e:
        if "already writing" in str(e):
            raise KakashiError("an engine is running on this database: re-arm from its desk (r)") from None
        raise
    try:
        killed, drawdown = bool(store.control(Control.KILL_SWITCH)), str(store.control(Control.DRAWDOWN_STOP) or "")
        if not killed and not drawdown:
            return "kill switch is not thrown; nothing to re-arm"
        if not confirm(str(store.control(Control.KILL_REASON) or "operator") if killed else drawdown):
            return "not re-armed"
        # On the engine's clock (simulated time on the simulator), like the kill it answers.
        ts = store.last_tick_ts() or now_wall_ms()
        with store.atomic():
            if killed:
                store.set_kill_switch(False, "cli", ts)
            if drawdown:  # the peak restarts from the equity the engine marks at its next tick
                store.set_control(Control.DRAWDOWN_STOP, "")
                store.clear_controls([Control.PEAK_EQUITY])
                store.add_event(ts, "drawdown_rearm", "peak restarts at the next tick's equity (cli)")
        return " and ".join(
            (["kill switch re-armed"] if killed else []) + (["drawdown stop re-armed"] if drawdown else [])
        )
    finally:
        store.close()


def _apply_request_offline(store: Store, rid: int, kind: str, arg: str, ts: int) -> None:
    """What the engine would do with the request, done by the command line (no engine)."""
    cmd = from_request(kind, arg)
    if isinstance(cmd, Kill):
        store.set_kill_switch(True, cmd.reason, ts)
    elif isinstance(cmd, (Pause, Resume)):
        store.set_paused(isinstance(cmd, Pause), ts, cmd.origin)
    store.mark_requests_applied([rid], int(store.control(Control.TICK_COUNT) or 0))
