"""The catalog's commands: ``kakashi record``, ``kakashi catalog import|info`` and
``kakashi replay --catalog`` (parsers in cli.py; the work here)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from kakashi_tui.errors import ConfigError


def add_catalog_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", metavar="DIR", help="market-data catalog folder (default: catalog/ beside the "
                   "database, or [catalog] dir in the config)")


def catalog_dir(args: argparse.Namespace, cfg) -> Path:
    from kakashi_tui.adapters.catalog import default_catalog_dir
    from kakashi_tui.runtime import Options, db_path

    if getattr(args, "catalog", None):
        return Path(args.catalog)
    configured = getattr(cfg, "catalog", None)
    if configured is not None and getattr(configured, "dir", None):
        return Path(configured.dir)
    return default_catalog_dir(db_path(Options(db=args.db), cfg))


def _roll(cfg, args: argparse.Namespace) -> float:
    from kakashi_tui.adapters.catalog import DEFAULT_ROLL_S

    if getattr(args, "roll", None) is not None:
        return args.roll
    configured = getattr(cfg, "catalog", None)
    return getattr(configured, "roll_seconds", None) or DEFAULT_ROLL_S


def cmd_record(args: argparse.Namespace) -> int:
    """Run the feed without trading: fetch, validate, store, record; at the operator's cadence."""
    from kakashi_tui.adapters.catalog import CatalogWriter, attach_recorder
    from kakashi_tui.cli import _options
    from kakashi_tui.config import load_config
    from kakashi_tui.runtime import build_engine, warn

    cfg = load_config(args.config)
    opts = _options(args)
    root = catalog_dir(args, cfg)
    writer = CatalogWriter(root, roll_s=_roll(cfg, args))
    try:
        engine = build_engine(opts, cfg)
    except BaseException:
        writer.close()
        raise
    rec = attach_recorder(engine, writer)
    interval = args.interval if args.interval is not None else (0.0 if opts.source == "sim" else 5.0)
    stop = threading.Event()

    def _stop(signum, _frame):
        stop.set()

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    n = 0
    try:
        print(f"kakashi: recording {engine.source.name} into {root} | db {engine.store.path} | every "
              f"{interval:g}s | segments roll every {writer.roll_s:g}s | no trading", flush=True)
        while not stop.is_set() and (args.passes is None or n < args.passes):
            snaps, rejected, errors = engine.collect()
            rec.sample_beliefs([s.ticker for s in snaps])  # beliefs are recorded too, never traded on
            writer.maybe_roll()
            n += 1
            for e in errors:
                warn(e)
            if not args.quiet:
                print(f"pass {n} | {len(snaps)} snapshots, {rejected} rejected | catalog {writer.files_written} files, "
                      f"{writer.pending_rows} rows pending", flush=True)
            if interval:
                stop.wait(interval)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        try:
            rec.close()
        finally:
            engine.source.close()
            engine.store.close()
    rows = writer.rows_written
    print(f"recorded {n} passes into {root}: {rows['snapshots']} snapshots, {rows['markets']} market changes, "
          f"{rows['estimates']} estimates in {writer.files_written} files", flush=True)
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from kakashi_tui.config import load_config

    if getattr(args, "catalog_command", None) not in ("info", "import"):
        raise ConfigError("catalog needs a command: import or info (see 'kakashi catalog --help')")
    cfg = load_config(args.config)
    root = catalog_dir(args, cfg)
    if args.catalog_command == "info":
        return _info(root)
    return _import(args, root)


def _info(root: Path) -> int:
    from kakashi_tui.adapters.catalog import info

    days = info(root)
    if not days:
        print(f"catalog {root}: empty")
        return 0
    print(f"catalog {root}")
    print(f"{'date':<10}  {'snapshots':>10}  {'markets':>7}  {'changes':>7}  {'estimates':>9}  {'trades':>8}  "
          f"{'size':>9}  span (UTC)")
    tot = {"snapshots": 0, "markets": 0, "estimates": 0, "trades": 0}
    size = 0
    for d in days:
        span = ""
        if d.first_ts is not None and d.last_ts is not None:
            from datetime import datetime, timezone

            f = datetime.fromtimestamp(d.first_ts / 1000, tz=timezone.utc).strftime("%H:%M:%S")
            t = datetime.fromtimestamp(d.last_ts / 1000, tz=timezone.utc).strftime("%H:%M:%S")
            span = f"{f}-{t}"
        print(f"{d.date:<10}  {d.rows['snapshots']:>10,}  {d.markets:>7,}  {d.rows['markets']:>7,}  "
              f"{d.rows['estimates']:>9,}  {d.rows['trades']:>8,}  {_size(d.bytes):>9}  {span}")
        for k in tot:
            tot[k] += d.rows[k]
        size += d.bytes
    print(f"{'total':<10}  {tot['snapshots']:>10,}  {'':>7}  {tot['markets']:>7,}  {tot['estimates']:>9,}  "
          f"{tot['trades']:>8,}  {_size(size):>9}  {len(days)} day(s)")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _import(args: argparse.Namespace, root: Path) -> int:
    from kakashi_tui.adapters.catalog import CatalogWriter, import_ticks
    from kakashi_tui.adapters.replay import group_ticks, read_jsonl, records_from_db
    from kakashi_tui.report import connect_readonly

    if args.input:
        if not Path(args.input).is_file():
            raise ConfigError(f"no replay file at {args.input}")
        items = group_ticks(read_jsonl(args.input))
        what, source = args.input, "import"
    else:
        connect_readonly(args.from_db).close()  # a clear error for a missing or corrupt file
        items = group_ticks((i, rec, None) for i, rec in enumerate(records_from_db(args.from_db), start=1))
        what, source = args.from_db, "import"
    writer = CatalogWriter(root, roll_s=float("inf"))
    try:
        res = import_ticks(items, writer, source)
    finally:
        writer.close()
    print(f"imported {what} into {root}: {res.snapshots} snapshots, {res.markets} market changes, "
          f"{res.estimates} estimates; {res.rejected} rows rejected by the row check")
    for r in res.reasons:
        print(f"  rejected: {r}")
    return 0


def cmd_replay_catalog(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from kakashi_tui.adapters.columnar import Filters, replay_catalog
    from kakashi_tui.adapters.store import Store, now_wall_ms
    from kakashi_tui.config import load_config
    from kakashi_tui.core.money import fmt_cents
    from kakashi_tui.engine import Engine
    from kakashi_tui.report import export_postmortem, parse_day

    cfg = load_config(args.config)
    since = parse_day(args.since) if args.since else None
    until = parse_day(args.until, end=True) if args.until else None
    if since is not None and until is not None and until < since:
        raise ConfigError("--until is before --since")
    filters = Filters(since, until, set(args.ticker) if args.ticker else None,
                      set(args.series) if args.series else None)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = args.db or f"replays/replay-{stamp}.db"
    store = Store(target)
    try:
        if store.last_tick_ts() is not None:
            raise ConfigError(f"{target} already holds a run; replay into a new --db")
        ec = cfg.engine_config()
        engine, st = replay_catalog(args.catalog, lambda src, ests: Engine(store, src, ests, ec), filters,
                                    every_row=args.row_engine, edge_threshold=ec.strategy.edge_threshold,
                                    fee_multipliers=[ec.taker_fee_multiplier, *ec.series_fee_multipliers.values()])
        acct = engine.account
        fills = store.db.execute_sql("SELECT COUNT(*) FROM fills").fetchone()[0]
        seen = "every row" if args.row_engine else f"{st.snapshots} snapshots, {st.rows_decided}"
        print(f"replayed {st.ticks} ticks ({seen} through the engine's per-row code) into {target} | fills {fills} | "
              f"closed {len(acct.closed)} | "
              f"rejected rows {engine.rejected_total} | cash {fmt_cents(acct.cash_cents)} equity {fmt_cents(engine.equity())} "
              f"realised {fmt_cents(acct.realized_cents)}")
        if args.report:
            print(f"post-mortem written to {export_postmortem(target, args.report, now_wall_ms()).path}")
    finally:
        store.close()
    return 0
