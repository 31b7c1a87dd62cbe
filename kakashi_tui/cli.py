"""The ``kakashi`` command. Every failure the operator can cause ends in one line on
stderr and exit code 2 (usage/config) or 1 (runtime); nothing stored is lost.

Textual is imported only when the desk opens, so ``--help`` and ``--headless`` stay fast.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import threading
from collections.abc import Sequence

import peewee

from kakashi_tui import __version__
from kakashi_tui.errors import ConfigError, KakashiError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage otherwise)
        raise ConfigError(f"{message} (see '{self.prog} --help')")


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {n}")
    return n


def _seconds(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {v!r}") from None
    if not (0 <= x <= 3600):
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {v}")
    return x


def _seed(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", help="SQLite file (default: kakashi.db, or KAKASHI_DB)")
    common.add_argument("--config", metavar="PATH", help="TOML config (or KAKASHI_CONFIG)")

    feed = argparse.ArgumentParser(add_help=False)
    feed.add_argument("--source", choices=["sim", "kalshi"], default="sim",
                      help="market data: the simulated exchange (default) or Kalshi's API (read-only)")
    feed.add_argument("--ticker", action="append", default=[], metavar="T", help="only these markets (repeatable)")
    feed.add_argument("--seed", type=_seed, help="simulator seed (a DB remembers its seed)")
    feed.add_argument("--api-base", metavar="URL", help="Kalshi API base URL (or KAKASHI_API_BASE)")
    feed.add_argument("--beliefs", metavar="FILE", help="TOML or CSV of ticker -> p_hat for real markets")

    p = _Parser(prog="kakashi", description="Kakashi: a paper-trading desk for Kalshi binary markets. "
                "Paper only: it never places a real order.")
    p.add_argument("--version", action="version", version=f"kakashi {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", parents=[common, feed], help="run the paper-trading loop (the desk, or --headless)")
    run.add_argument("--headless", action="store_true", help="no UI: one log line per tick")
    run.add_argument("--log", metavar="PATH", help="the desk's log file (default: kakashi.log beside the database)")
    run.add_argument("--ticks", type=_positive, help="stop after N ticks")
    run.add_argument("--interval", type=_seconds, help="seconds between ticks (default: sim 0 headless, "
                     "0.5 in the desk; kalshi 5)")

    snap = sub.add_parser("snapshot", parents=[common, feed], help="fetch, validate and store one pass of market data")
    snap.add_argument("--strict", action="store_true", help="with --source kalshi: fail instead of falling back to sim")

    rearm = sub.add_parser("rearm", parents=[common], help="re-arm a thrown kill switch")
    rearm.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    sub.add_parser("status", parents=[common], help="bankroll, positions and control state from the ledger")

    kill = sub.add_parser("kill", parents=[common], help="throw the kill switch (a running engine stops ordering "
                          "on its next tick); stays thrown until `kakashi rearm`")
    kill.add_argument("--reason", default="operator (cli)", help="recorded with the event")

    rep = sub.add_parser("report", parents=[common], help="write a post-mortem (Markdown + PNG charts)")
    rep.add_argument("--out", metavar="DIR", default="reports", help="parent folder (default: reports/)")
    rep.add_argument("--since", metavar="DATE", help="first UTC day, YYYY-MM-DD")
    rep.add_argument("--until", metavar="DATE", help="last UTC day, YYYY-MM-DD")
    rep.add_argument("--no-charts", action="store_true", help="Markdown only")

    rp = sub.add_parser("replay", parents=[common], help="run recorded snapshots through the engine (a backtest)")
    src = rp.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="FILE.jsonl", help="recorded snapshots, estimates and settlements")
    src.add_argument("--from-db", metavar="OTHER.db", help="replay the data an earlier run stored")
    rp.add_argument("--save-jsonl", metavar="FILE", help="with --from-db: also write the records as JSONL")
    rp.add_argument("--report", metavar="DIR", help="write the post-mortem of the replay under DIR")
    return p


def _options(args: argparse.Namespace):
    from kakashi_tui.runtime import Options

    return Options(source=getattr(args, "source", "sim"), db=args.db, seed=getattr(args, "seed", None),
                   api_base=getattr(args, "api_base", None), beliefs=getattr(args, "beliefs", None),
                   tickers=getattr(args, "ticker", []) or [])


def cmd_snapshot(args: argparse.Namespace) -> int:
    from kakashi_tui.config import load_config
    from kakashi_tui.runtime import build_engine, warn

    cfg = load_config(args.config)
    opts = _options(args)
    engine = build_engine(opts, cfg)
    try:
        snaps, rejected, errors = engine.collect()
        if opts.source == "kalshi" and errors and not snaps:
            if args.strict:
                raise KakashiError(f"Kalshi API unreachable: {errors[0]}")
            warn(f"Kalshi API unreachable ({errors[0]}); falling back to the simulated exchange")
            engine.store.close()
            opts.source = "sim"
            engine = build_engine(opts, cfg)
            snaps, rejected, errors = engine.collect()
        for s in snaps:
            print(f"Snapshot saved for {s.ticker}")
        for e in errors:
            warn(e)
        print(f"snapshot: {len(snaps)} saved, {rejected} rejected from {engine.source.name}")
    finally:
        engine.source.close()
        engine.store.close()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from kakashi_tui.config import load_config
    from kakashi_tui.runtime import build_engine

    cfg = load_config(args.config)
    opts = _options(args)
    if not args.headless:
        from kakashi_tui.tui.app import run_desk

        return run_desk(opts, cfg, interval=args.interval, ticks=args.ticks, log_path=args.log)
    engine = build_engine(opts, cfg)
    interval = args.interval if args.interval is not None else (0.0 if opts.source == "sim" else 5.0)
    stop = threading.Event()

    def _stop(signum, _frame):
        stop.set()

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"kakashi: paper trading on {engine.source.name} | db {engine.store.path} | "
              f"{engine.state_label()} | PAPER ONLY", flush=True)
        n = 0
        while not stop.is_set() and (args.ticks is None or n < args.ticks):
            report = engine.tick()
            n += 1
            print(report.log_line(), flush=True)
            if interval:
                stop.wait(interval)
        from kakashi_tui.core.money import fmt_cents

        acct = engine.account
        print(f"stopped after {n} ticks | cash {fmt_cents(acct.cash_cents)} equity {fmt_cents(engine.equity())} "
              f"realised {fmt_cents(acct.realized_cents)} fees {fmt_cents(acct.fees_cents)} | "
              f"open {len(acct.open_positions())} | {engine.state_label()}", flush=True)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        engine.source.close()
        engine.store.close()
    return 0


def cmd_rearm(args: argparse.Namespace) -> int:
    from kakashi_tui.adapters.store import Store, now_wall_ms
    from kakashi_tui.config import load_config
    from kakashi_tui.runtime import Options, db_path

    cfg = load_config(args.config)
    try:
        store = Store(db_path(Options(db=args.db), cfg))
    except KakashiError as e:
        if "already writing" in str(e):
            raise KakashiError("an engine is running on this database: re-arm from its desk (r)") from None
        raise
    try:
        if store.get_control("kill_switch", "0") != "1":
            print("kill switch is not thrown; nothing to re-arm")
            return 0
        reason = store.get_control("kill_reason", "") or "operator"
        if not args.yes:
            if not sys.stdin.isatty():
                raise ConfigError("re-arming needs confirmation: run in a terminal or pass --yes")
            answer = input(f"Kill switch thrown ({reason}). Re-arm and allow new paper orders? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("not re-armed")
                return 1
        # On the engine's clock (simulated time on the simulator), like the kill it answers.
        store.set_kill_switch(False, "cli", store.last_tick_ts() or now_wall_ms())
        print("kill switch re-armed")
    finally:
        store.close()
    return 0


def _open_existing(args: argparse.Namespace):
    """An existing Kakashi database, without the writer lock (for kill and status)."""
    import os

    from kakashi_tui.adapters.store import Store
    from kakashi_tui.config import load_config
    from kakashi_tui.runtime import Options, db_path

    path = db_path(Options(db=args.db), load_config(args.config))
    if not os.path.exists(path):
        raise ConfigError(f"no database at {path}")
    store = Store(path, writer=False)
    if not store.db.table_exists("control"):
        store.close()
        raise ConfigError(f"{path} is not a Kakashi database")
    return store


def cmd_kill(args: argparse.Namespace) -> int:
    from kakashi_tui.adapters.store import now_wall_ms

    # No writer lock: an emergency stop must work while an engine is running on this DB.
    store = _open_existing(args)
    try:
        store.set_kill_switch(True, args.reason, store.last_tick_ts() or now_wall_ms())
        print("kill switch thrown: no new paper orders until `kakashi rearm`")
    finally:
        store.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from kakashi_tui.core.ledger import equity_cents
    from kakashi_tui.core.money import fmt_cents

    store = _open_existing(args)
    try:
        acct = store.account()
        marks = {p.ticker: store.latest_snapshot(p.ticker) for p in acct.open_positions()}
        eq = equity_cents(acct, {t: s for t, s in marks.items() if s is not None})
        kill = store.get_control("kill_switch", "0") == "1"
        print(f"cash {fmt_cents(acct.cash_cents)} | equity {fmt_cents(eq)} | realised {fmt_cents(acct.realized_cents)}"
              f" | fees {fmt_cents(acct.fees_cents)} | kill switch {'THROWN' if kill else 'armed'}")
        for p in acct.open_positions():
            print(f"  {p.ticker} {p.side.value.upper()} x{p.contracts} avg {p.avg_price:.2f} cost {fmt_cents(p.cost_cents)}")
    finally:
        store.close()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from kakashi_tui.adapters.store import now_wall_ms
    from kakashi_tui.config import load_config
    from kakashi_tui.report import export_postmortem, parse_day
    from kakashi_tui.runtime import Options, db_path

    cfg = load_config(args.config)
    since = parse_day(args.since) if args.since else None
    until = parse_day(args.until, end=True) if args.until else None
    if since is not None and until is not None and until < since:
        raise ConfigError("--until is before --since")
    out = export_postmortem(db_path(Options(db=args.db), cfg), args.out, now_wall_ms(), since, until,
                            charts=not args.no_charts)
    print(f"post-mortem written to {out.path}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kakashi_tui.adapters.replay import (
        ReplayEstimator, ReplaySource, group_ticks, read_jsonl, records_from_db, write_jsonl,
    )
    from kakashi_tui.adapters.store import Store, now_wall_ms
    from kakashi_tui.config import load_config
    from kakashi_tui.core.money import fmt_cents
    from kakashi_tui.engine import Engine
    from kakashi_tui.report import connect_readonly, export_postmortem

    cfg = load_config(args.config)
    if args.save_jsonl and not args.from_db:
        raise ConfigError("--save-jsonl needs --from-db")
    if args.input:
        if not Path(args.input).is_file():
            raise ConfigError(f"no replay file at {args.input}")
        with open(args.input, "rb") as f:
            total = sum(1 for _ in f)
        items = group_ticks(read_jsonl(args.input))
    else:
        connect_readonly(args.from_db).close()  # a clear error for a missing or corrupt file
        records = list(records_from_db(args.from_db))
        if args.save_jsonl:
            write_jsonl(records, args.save_jsonl)
        total = len(records)
        items = group_ticks((i, rec, None) for i, rec in enumerate(records, start=1))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = args.db or f"replays/replay-{stamp}.db"
    store = Store(target)
    try:
        if store.last_tick_ts() is not None:
            raise ConfigError(f"{target} already holds a run; replay into a new --db")
        source = ReplaySource(items)
        engine = Engine(store, source, [ReplayEstimator(source)], cfg.engine_config())
        done = 0
        with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      transient=True) as progress:
            task = progress.add_task("replay", total=total)
            while source.has_next():
                engine.tick()
                n = len(source.current.rows) + len(source.current.estimates) if source.current else 0
                done += n
                progress.update(task, completed=done)
        acct = engine.account
        print(f"replayed {engine.tick_count} ticks into {target} | fills {store.db.execute_sql('SELECT COUNT(*) FROM fills').fetchone()[0]}"
              f" | closed {len(acct.closed)} | rejected rows {engine.rejected_total} | cash {fmt_cents(acct.cash_cents)}"
              f" equity {fmt_cents(engine.equity())} realised {fmt_cents(acct.realized_cents)}")
        if args.report:
            print(f"post-mortem written to {export_postmortem(target, args.report, now_wall_ms()).path}")
    finally:
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import os

    os.umask(0o077)  # the DB, its WAL, the lock and reports are the operator's alone
    commands = {"run": cmd_run, "snapshot": cmd_snapshot, "rearm": cmd_rearm, "status": cmd_status, "kill": cmd_kill,
                "report": cmd_report, "replay": cmd_replay}
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]  # bare `kakashi [options]` is `kakashi run [options]`
    try:
        args = build_parser().parse_args(argv)
        return commands[args.command](args)
    except KakashiError as e:
        print(f"kakashi: error: {e}", file=sys.stderr)
        return e.exit_code
    except (peewee.OperationalError, sqlite3.OperationalError) as e:
        msg = str(e)
        hint = "another process holds it; try again" if "locked" in msg else msg
        print(f"kakashi: error: database: {hint}", file=sys.stderr)
        return 1
    except (peewee.DatabaseError, sqlite3.DatabaseError) as e:
        print(f"kakashi: error: database is unreadable or corrupt ({e})", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `kakashi ... | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("kakashi: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"kakashi: error: {e.strerror or e}: {getattr(e, 'filename', '') or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except Exception as e:  # a bug: one line for the operator, the traceback in a file for us
        import tempfile
        import time
        import traceback
        from pathlib import Path

        path = Path(tempfile.gettempdir()) / f"kakashi-crash-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
        try:
            path.write_text(traceback.format_exc())
            where = f"; details in {path}"
        except OSError:
            where = ""
        print(f"kakashi: internal error: {e.__class__.__name__}: {e}{where} (what was stored is intact)",
              file=sys.stderr)
        return 70
