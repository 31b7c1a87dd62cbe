"""The catalog's commands: ``kakashi record``, ``kakashi catalog import|info|backfill`` and
``kakashi replay --catalog`` (parsers in cli.py, backfill's here; the work here)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from kakashi_tui.core.errors import ConfigError
from kakashi_tui.core.text import safe_text

if TYPE_CHECKING:
    from kakashi_tui.adapters.columnar import CatalogSource
    from kakashi_tui.trading.config import KakashiConfig


def add_catalog_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--catalog",
        metavar="DIR",
        help="market-data catalog folder (default: catalog/ beside the database, or [catalog] dir in the config)",
    )


def _catalog_dir(args: argparse.Namespace, cfg) -> Path:
    from kakashi_tui.trading.runtime import Options, catalog_dir

    return Path(catalog_dir(Options(db=args.db, catalog=getattr(args, "catalog", None)), cfg))


def cmd_record(args: argparse.Namespace) -> int:
    """Run the feed without trading: fetch, validate, store, record; at the operator's cadence."""
    from kakashi_tui.frontends.cli.main import _options, _stop_on_signals
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import build_collector, catalog_dir, warn

    cfg = load_config(args.config)
    opts = _options(args)
    opts.catalog = args.catalog
    if args.roll is not None:
        cfg = cfg.model_copy(update={"catalog": cfg.catalog.model_copy(update={"roll_seconds": args.roll})})
    root = catalog_dir(opts, cfg)
    service, rec, close = build_collector(opts, cfg)
    writer = rec.writer
    interval = args.interval if args.interval is not None else (0.0 if opts.source == "sim" else 5.0)
    n = 0
    try:
        print(
            f"kakashi: recording {service.source_name} into {safe_text(root)} | db {safe_text(service.db_path)} "
            f"| every {interval:g}s | segments roll every {writer.roll_s:g}s | no trading",
            flush=True,
        )
        with _stop_on_signals(service) as sig:
            while not sig.signalled.is_set() and (args.passes is None or n < args.passes):
                tickers, rejected, errors = service.collect()
                if errors == ["stopped"]:
                    break
                rec.sample_beliefs(tickers)  # beliefs are recorded too, never traded on
                writer.maybe_roll()
                n += 1
                for e in errors:
                    warn(e)
                if not args.quiet:
                    print(
                        f"pass {n} | {len(tickers)} snapshots, {rejected} rejected | catalog "
                        f"{writer.files_written} files, {writer.pending_rows} rows pending",
                        flush=True,
                    )
                if interval:
                    sig.signalled.wait(interval)
    finally:
        close()
    rows = writer.rows_written
    ws = (
        f", {rows['trades']} trade prints, {rows['book_deltas']} book changes"
        if rows["book_deltas"] or rows["trades"]
        else ""
    )
    print(
        f"recorded {n} passes into {safe_text(root)}: {rows['snapshots']} snapshots, {rows['markets']} market changes, "
        f"{rows['estimates']} estimates{ws} in {writer.files_written} files",
        flush=True,
    )
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from kakashi_tui.trading.config import load_config

    if getattr(args, "catalog_command", None) not in ("info", "import", "backfill"):
        raise ConfigError("catalog needs a command: import, info or backfill (see 'kakashi catalog --help')")
    cfg = load_config(args.config)
    root = _catalog_dir(args, cfg)
    if args.catalog_command == "info":
        return _info(root)
    if args.catalog_command == "backfill":
        return _backfill(args, cfg, root)
    return _import(args, root)


def add_backfill_parser(catsub, common: argparse.ArgumentParser, api_base) -> None:
    bf = catsub.add_parser(
        "backfill",
        parents=[common],
        help="fetch Kalshi's public history (trades, candlesticks, settled markets) into the catalog",
    )
    add_catalog_option(bf)
    bf.add_argument(
        "--tickers",
        "--ticker",
        dest="tickers",
        action="append",
        default=[],
        metavar="T[,T...]",
        help="these markets (repeatable, or comma-separated; default: every market the database ever held)",
    )
    bf.add_argument("--since", metavar="DATE", help="first UTC day, YYYY-MM-DD (default: 7 days before --until)")
    bf.add_argument("--until", metavar="DATE", help="last UTC day, YYYY-MM-DD (default: now)")
    bf.add_argument(
        "--period",
        type=int,
        choices=(1, 60, 1440),
        default=60,
        help="candlestick period in minutes (default 60)",
    )
    bf.add_argument("--api-base", metavar="URL", type=api_base, help="Kalshi API base URL (or KAKASHI_API_BASE)")


BACKFILL_DEFAULT_DAYS = 7


def _backfill_tickers(args: argparse.Namespace, cfg) -> list[str]:
    from kakashi_tui.adapters.kalshi.schemas import ticker_ok
    from kakashi_tui.adapters.queries import connect_readonly, traded_tickers
    from kakashi_tui.trading.runtime import Options, db_path

    named = [t.strip() for arg in args.tickers for t in arg.split(",") if t.strip()]
    for t in named:
        if not ticker_ok(t):
            raise ConfigError(f"--tickers {safe_text(t)}: not a name Kalshi could list")
    if named or args.tickers:
        if not named:
            raise ConfigError("--tickers names no market")
        return list(dict.fromkeys(named))
    db = db_path(Options(db=args.db), cfg)
    if not Path(db).exists():
        raise ConfigError(
            f"backfill needs --tickers, or a database that held positions (no database at {safe_text(db)})"
        )
    con = connect_readonly(db)
    try:
        held = traded_tickers(con)
    finally:
        con.close()
    if not held:
        raise ConfigError(f"backfill needs --tickers: {safe_text(db)} never held a position")
    return held


def _backfill(args: argparse.Namespace, cfg, root: Path) -> int:
    import time

    from kakashi_tui.adapters.catalog import CatalogWriter
    from kakashi_tui.adapters.kalshi.backfill import backfill
    from kakashi_tui.adapters.kalshi.client import KalshiHTTPError
    from kakashi_tui.core.errors import KakashiError
    from kakashi_tui.frontends.report.postmortem import parse_days
    from kakashi_tui.trading.runtime import Options, api_base, build_kalshi_client

    since, until = parse_days(args.since, args.until)
    now = int(time.time() * 1000)
    until = min(until, now) if until is not None else now
    since = since if since is not None else until - BACKFILL_DEFAULT_DAYS * 86_400_000
    if since > until:
        raise ConfigError("--since is after now: nothing to backfill")
    tickers = _backfill_tickers(args, cfg)
    opts = Options(source="kalshi", db=args.db, api_base=args.api_base)
    base = api_base(opts, cfg)
    client, _notice = build_kalshi_client(opts, cfg)
    writer = CatalogWriter(root, roll_s=float("inf"), skip_existing=True)  # run twice, written once
    try:
        try:
            res = backfill(client, writer, tickers, since, until, args.period)
        except KalshiHTTPError as e:
            raise KakashiError(f"cannot backfill from {safe_text(base)}: {e}") from None
    finally:
        try:
            writer.close()  # what was taken is written, even after an error
        finally:
            client.close()
    w, skipped = writer.rows_written, sum(writer.rows_skipped.values()) + res.skipped
    again = f"; {skipped} rows already in the catalog, not written again" if skipped else ""
    print(
        f"backfilled {len(tickers) - len(res.unknown)} of {len(tickers)} markets into {safe_text(root)}: "
        f"{w['trades']} trade prints, {w['candles']} candlesticks, {w['markets']} settled markets; "
        f"{res.rejected} rows rejected by the row check{again}"
    )
    if res.unknown:
        print(f"  not listed by Kalshi: {safe_text(', '.join(res.unknown), 400)}")
    for n in res.notes:
        print(f"  note: {safe_text(n)}")
    for r in res.reasons:
        print(f"  rejected: {safe_text(r)}")
    return 0


def _clock(ms: int) -> str:
    """A span's end as HH:MM:SS UTC; a time outside 2000..2100 as its number (it is no time)."""
    from datetime import datetime

    from kakashi_tui.core.timeguard import ts_problem

    if ts_problem(ms):
        return str(ms)
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


def _info(root: Path) -> int:
    """The table of days, then each file a replay would refuse (``kakashi: catalog file ... is
    unreadable: ...`` on stderr, exit 1) or play only in part (a note)."""
    import sys

    from kakashi_tui.adapters.catalog import survey

    days, problems = survey(root)
    if not days:
        print(f"catalog {safe_text(root)}: empty")
        return 0
    print(f"catalog {safe_text(root)} | {_growth(days, sum(d.bytes for d in days))}")
    print(
        f"{'date':<10}  {'snapshots':>10}  {'markets':>7}  {'changes':>7}  {'estimates':>9}  {'trades':>8}  "
        f"{'book rows':>10}  {'candles':>8}  {'shards':>6}  {'size':>9}  span (UTC)"
    )
    counted = ("snapshots", "markets", "estimates", "trades", "book_deltas", "candles", "exchange_shards")
    tot = dict.fromkeys(counted, 0)
    size = 0
    for d in days:
        span = ""
        if d.first_ts is not None and d.last_ts is not None:
            span = f"{_clock(d.first_ts)}-{_clock(d.last_ts)}"
        print(
            f"{safe_text(d.date):<10}  {d.rows['snapshots']:>10,}  {d.markets:>7,}  {d.rows['markets']:>7,}  "
            f"{d.rows['estimates']:>9,}  {d.rows['trades']:>8,}  {d.rows['book_deltas']:>10,}  "
            f"{d.rows['candles']:>8,}  {d.rows['exchange_shards']:>6,}  {_size(d.bytes):>9}  {span}"
        )
        for k in tot:
            tot[k] += d.rows[k]
        size += d.bytes
    print(
        f"{'total':<10}  {tot['snapshots']:>10,}  {'':>7}  {tot['markets']:>7,}  {tot['estimates']:>9,}  "
        f"{tot['trades']:>8,}  {tot['book_deltas']:>10,}  {tot['candles']:>8,}  {tot['exchange_shards']:>6,}  "
        f"{_size(size):>9}  {len(days)} day(s)"
    )
    also = {k: sum(d.rows.get(k, 0) for d in days) for k in _ALSO}
    if any(also.values()):  # the replay's other inputs, not per day (the table stays within 120 columns)
        said = ", ".join(f"{n:,} {_ALSO[k][n != 1]}" for k, n in also.items() if n)
        print(f"{'also':<10}  {said}")
    for p in problems:
        if not p.unreadable:
            print(f"  note: {p}")
    bad = [p for p in problems if p.unreadable]
    for p in bad:
        print(f"kakashi: {p}", file=sys.stderr, flush=True)
    return 1 if bad else 0


#: The catalog's tables the day table has no column for, as ``catalog info``'s "also" line names them.
_ALSO = {
    "commands": ("operator command", "operator commands"),
    "seen": ("tick of markets seen unchanged", "ticks of markets seen unchanged"),
    "fill_context": ("fill-context row", "fill-context rows"),
    "runs": ("run start", "run starts"),
}


def _size(n: int) -> str:
    from kakashi_tui.frontends.fmt import fmt_bytes

    return fmt_bytes(n)


#: Below this much recorded time, ``catalog info`` does not extrapolate a day's growth.
GROWTH_MIN_SPAN_MS = 60_000


def _growth(days, size: int) -> str:
    """``size 1.2 GiB on disk | growth about 190.4 MiB a day of data (61.3 MiB over 7.7 h of
    snapshots)``: the bytes on disk over the time the snapshots span, date by date (a date's
    first to last quote; the gaps between recordings are not counted as time), scaled to a day.
    The time is the data's own clock, as the date folders are: the wall's for Kalshi, the
    simulator's (a minute a tick) for it."""
    span = sum(d.last_ts - d.first_ts for d in days if d.first_ts is not None and d.last_ts is not None)
    line = f"size {_size(size)} on disk"
    if span < GROWTH_MIN_SPAN_MS:
        return f"{line} | growth per day: too little recorded to tell (snapshots span {span / 1000:.0f}s)"
    return (
        f"{line} | growth about {_size(int(size * 86_400_000 / span))} a day of data "
        f"({_size(size)} over {span / 3_600_000:.1f} h of snapshots)"
    )


def _import(args: argparse.Namespace, root: Path) -> int:
    from kakashi_tui.adapters.catalog import CatalogWriter, import_ticks
    from kakashi_tui.adapters.queries import connect_readonly
    from kakashi_tui.adapters.replay import group_ticks, read_jsonl, records_from_db

    if args.input:
        if not Path(args.input).exists():  # a pipe or device: read_jsonl refuses it in one line
            raise ConfigError(f"no replay file at {safe_text(args.input)}")
        items = group_ticks(read_jsonl(args.input))
        what, source = args.input, "import"
    else:
        connect_readonly(args.from_db).close()  # a clear error for a missing or corrupt file
        items = group_ticks((i, rec, None) for i, rec in enumerate(records_from_db(args.from_db), start=1))
        what, source = args.from_db, "import"
    writer = CatalogWriter(root, roll_s=float("inf"), skip_existing=True)  # run twice, imported once
    try:
        res = import_ticks(items, writer, source)
    finally:
        writer.close()
    again = f"; {res.skipped} rows already in the catalog, not written again" if res.skipped else ""
    print(
        f"imported {safe_text(what)} into {safe_text(root)}: {res.snapshots} snapshots, {res.markets} market changes, "
        f"{res.estimates} estimates; {res.rejected} rows rejected by the row check{again}"
    )
    for r in res.reasons:
        print(f"  rejected: {safe_text(r)}")  # a record's reason may quote it
    return 0


def _recorded_runs(source: CatalogSource, cfg: KakashiConfig, adopt: bool) -> KakashiConfig:
    """What the recorded runs (the catalog's ``runs``, version 8) tell a replay before it starts:
    the recorded settings adopted (``--recorded-settings``: the first run's) or, one line each,
    those of the replay's that differ; and where its clock starts when not at the run's start.
    The configuration the replay runs with."""
    from kakashi_tui.frontends.fmt import fmt_utc
    from kakashi_tui.trading.config import adopt_recorded, recorded_notes

    runs = source.runs
    if adopt:
        if not runs.runs:
            raise ConfigError(
                "--recorded-settings: the catalog records no run's settings (a recording made before catalog version 8)"
            )
        cfg = adopt_recorded(cfg, runs.runs[0].settings)
        ec = cfg.engine_config()
        source.decide_with(
            ec.strategy.edge_threshold, [ec.taker_fee_multiplier, *ec.series_fee_multipliers.values()], ec.strategy.mode
        )
    for line in recorded_notes([r.settings for r in runs.runs], cfg):
        print(f"kakashi: note: {safe_text(line, 300)}", file=sys.stderr)
    if runs.before_window is not None:
        when = "%Y-%m-%d %H:%M:%S UTC"
        print(
            f"kakashi: note: the recorded run started at {fmt_utc(runs.before_window.ts, when)}, before --since: "
            f"this replay starts at its first row, {fmt_utc(runs.first_row_ms, when)} "
            "(its deposit is dated there, so its ledger's chain hashes are not the run's)",
            file=sys.stderr,
        )
    return cfg


def cmd_replay_catalog(args: argparse.Namespace) -> int:
    from datetime import datetime

    from kakashi_tui.adapters.columnar import CatalogSource, Filters
    from kakashi_tui.frontends.cli.main import _stop_on_signals, finish_replay
    from kakashi_tui.frontends.report.postmortem import parse_days
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import REPLAY_COMMIT_EVERY, replay_service

    cfg = load_config(args.config)
    since, until = parse_days(args.since, args.until)
    filters = Filters(
        since, until, set(args.ticker) if args.ticker else None, set(args.series) if args.series else None
    )
    ec = cfg.engine_config()
    source = CatalogSource(
        args.catalog,
        filters,
        every_row=args.row_engine,
        edge_threshold=ec.strategy.edge_threshold,
        fee_multipliers=[ec.taker_fee_multiplier, *ec.series_fee_multipliers.values()],
        mode=ec.strategy.mode,  # (which rows a post or a take could be decided on)
    )
    cfg = _recorded_runs(source, cfg, args.recorded_settings)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = args.db or f"replays/replay-{stamp}.db"
    service, close = replay_service(target, source, source, cfg)
    try:
        with _stop_on_signals(service):
            service.run_here(source.has_next, commit_every=REPLAY_COMMIT_EVERY)
            if not source.has_next():  # played out: what the operator did after the last tick too
                service.apply_recorded(source.trailing_commands())
        st = source.stats
        seen = "every row" if args.row_engine else f"{st.snapshots} snapshots, {st.rows_decided}"
        said = f"; {st.commands} operator command(s) applied where the run applied them" if st.commands else ""
        print(f"catalog: {seen} through the engine's per-row code{said}")
        finish_replay(service, target, args.report)
    finally:
        close()
    return 0
