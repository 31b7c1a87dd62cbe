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
from datetime import UTC
from typing import NoReturn

import peewee

from kakashi_tui import __version__
from kakashi_tui.core.errors import ConfigError, KakashiError
from kakashi_tui.core.text import safe_text

#: The most of one error line an argument or a file name may fill (a 5,000-digit number is cut).
ERROR_LIMIT = 600


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage otherwise)
        raise ConfigError(f"{safe_text(message, ERROR_LIMIT - 100)} (see '{self.prog} --help')")


def _shown(v: str, quoted: bool = True) -> str:
    """An argument as an error line echoes it: escaped, at most 40 characters (a 5,000-digit
    number is not repeated whole)."""
    return safe_text(repr(v) if quoted else v, ARG_SHOWN)


ARG_SHOWN = 40


def _whole(v: str) -> int:
    if len(v) > 30:  # no count or seed is this long (and int() of 5,000 digits refuses anyway)
        raise argparse.ArgumentTypeError(f"too long for a number ({len(v)} characters): {_shown(v)}")
    try:
        return int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {_shown(v)}") from None


def _positive(v: str) -> int:
    n = _whole(v)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {n}")
    return n


def _seconds(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {_shown(v)}") from None
    if not (0 <= x <= 3600):
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {_shown(v, quoted=False)}")
    return x


def _seed(v: str) -> int:
    n = _whole(v)
    if not 0 <= n < 2**63:  # as [sim] seed: it is stored as a 64-bit integer's text
        raise argparse.ArgumentTypeError(f"must be between 0 and 2^63-1, got {_shown(v, quoted=False)}")
    return n


def _bounded(lo: int, hi: int):
    def check(v: str) -> int:
        n = _whole(v)
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo:,} and {hi:,}, got {_shown(v, quoted=False)}")
        return n

    return check


def _api_base(v: str) -> str:
    from kakashi_tui.trading.config import check_api_base

    try:
        return check_api_base(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--db", metavar="PATH", help="SQLite file (default: kakashi.db, or KAKASHI_DB)")
    common.add_argument("--config", metavar="PATH", help="TOML config (or KAKASHI_CONFIG)")

    feed = _Parser(add_help=False)
    feed.add_argument(
        "--source",
        choices=["sim", "kalshi"],
        default="sim",
        help="market data: the simulated exchange (default) or Kalshi's API (read-only)",
    )
    feed.add_argument("--ticker", action="append", default=[], metavar="T", help="only these markets (repeatable)")
    feed.add_argument(
        "--series",
        action="append",
        default=[],
        metavar="S",
        help="with --source kalshi: only markets of this series (repeatable)",
    )
    feed.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="E",
        help="with --source kalshi: only markets of this event (repeatable)",
    )
    feed.add_argument("--seed", type=_seed, help="simulator seed (or KAKASHI_SEED; a DB remembers its seed)")
    feed.add_argument("--api-base", metavar="URL", type=_api_base, help="Kalshi API base URL (or KAKASHI_API_BASE)")
    feed.add_argument("--beliefs", metavar="FILE", help="TOML or CSV of ticker -> p_hat for real markets")

    p = _Parser(
        prog="kakashi",
        description="Kakashi: a paper-trading desk for Kalshi binary markets. "
        "Paper only: it never places a real order.",
    )
    p.add_argument("--version", action="version", version=f"kakashi {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", parents=[common, feed], help="run the paper-trading loop (the desk, or --headless)")
    run.add_argument("--headless", action="store_true", help="no UI: one log line per tick")
    run.add_argument("--no-record", action="store_true", help="do not record market data into the catalog")
    run.add_argument(
        "--catalog",
        metavar="DIR",
        help="market-data catalog folder (default: catalog/ beside the database, or [catalog] dir in the config)",
    )
    run.add_argument("--log", metavar="PATH", help="the desk's log file (default: kakashi.log beside the database)")
    run.add_argument("--ticks", type=_positive, help="stop after N ticks")
    run.add_argument(
        "--interval", type=_seconds, help="seconds between ticks (default: sim 0 headless, 0.5 in the desk; kalshi 5)"
    )

    snap = sub.add_parser("snapshot", parents=[common, feed], help="fetch, validate and store one pass of market data")
    snap.add_argument("--strict", action="store_true", help="with --source kalshi: fail instead of falling back to sim")

    rearm = sub.add_parser("rearm", parents=[common], help="re-arm a thrown kill switch")
    rearm.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    status = sub.add_parser("status", parents=[common], help="bankroll, positions and control state from the ledger")
    status.add_argument(
        "--health",
        action="store_true",
        help="one line for cron or a supervisor; exit 0 healthy or cleanly stopped, 1 halted, 3 stalled, 4 dead",
    )

    kill = sub.add_parser(
        "kill",
        parents=[common],
        help="throw the kill switch (a running engine stops ordering "
        "on its next tick); stays thrown until `kakashi rearm`",
    )
    kill.add_argument("--reason", default="operator (cli)", help="recorded with the event")
    sub.add_parser("pause", parents=[common], help="pause new decisions (a running engine: on its next tick)")
    sub.add_parser("resume", parents=[common], help="resume new decisions after `kakashi pause` or p")

    rep = sub.add_parser("report", parents=[common], help="write a post-mortem (Markdown + PNG charts)")
    rep.add_argument(
        "--out", metavar="DIR", help="parent folder (default: [desk] reports_dir, else reports/ beside the database)"
    )
    rep.add_argument("--since", metavar="DATE", help="first UTC day, YYYY-MM-DD")
    rep.add_argument("--until", metavar="DATE", help="last UTC day, YYYY-MM-DD")
    rep.add_argument("--no-charts", action="store_true", help="Markdown only")

    risk = sub.add_parser("risk", parents=[common], help="odds of ruin: a Monte Carlo over the next trades")
    risk.add_argument("--trades", type=_bounded(1, 10_000), help="trades ahead to simulate (default 200)")
    risk.add_argument("--paths", type=_bounded(100, 100_000), help="paths (default 5,000)")
    risk.add_argument("--seed", type=_seed, help="random seed (default 20260124; the same seed, the same numbers)")
    risk.add_argument(
        "--exclusive", action="append", default=[], metavar="EVENT", help="an event whose markets are exclusive"
    )
    risk.add_argument("--floor", type=_bounded(1, 99), metavar="PCT", help="ruin: equity below PCT%% of today's")

    rp = sub.add_parser("replay", parents=[common], help="run recorded snapshots through the engine (a backtest)")
    src = rp.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="FILE.jsonl", help="recorded snapshots, estimates and settlements")
    src.add_argument("--from-db", metavar="OTHER.db", help="replay the data an earlier run stored")
    src.add_argument("--catalog", metavar="DIR", help="replay a market-data catalog (columnar: kakashi record)")
    rp.add_argument("--save-jsonl", metavar="FILE", help="with --from-db: also write the records as JSONL")
    rp.add_argument("--force", action="store_true", help="with --save-jsonl: overwrite FILE (never a database)")
    rp.add_argument("--report", metavar="DIR", help="write the post-mortem of the replay under DIR")
    rp.add_argument("--since", metavar="DATE", help="with --catalog: first UTC day, YYYY-MM-DD")
    rp.add_argument("--until", metavar="DATE", help="with --catalog: last UTC day, YYYY-MM-DD")
    rp.add_argument("--ticker", action="append", default=[], metavar="T", help="with --catalog: only these markets")
    rp.add_argument("--series", action="append", default=[], metavar="S", help="with --catalog: only these series")
    rp.add_argument(
        "--row-engine",
        action="store_true",
        help="with --catalog: every row through the per-row tick (the reference path; slower)",
    )
    rp.add_argument(
        "--recorded-settings",
        action="store_true",
        help="with --catalog: trade with the settings the recording ran with ([strategy], [fills], [risk], "
        "[fees], bankroll), not the config's",
    )

    from kakashi_tui.frontends.cli.catalog import add_catalog_option

    rec = sub.add_parser("record", parents=[common, feed], help="record market data into the catalog (no trading)")
    add_catalog_option(rec)
    rec.add_argument("--interval", type=_seconds, help="seconds between passes (default: sim 0; kalshi 5)")
    rec.add_argument("--passes", type=_positive, help="stop after N passes")
    rec.add_argument(
        "--roll",
        type=_seconds,
        metavar="S",
        help="seconds between catalog segments (default 120): a kill -9 loses at most this much",
    )
    rec.add_argument("--quiet", action="store_true", help="no line per pass")
    catp = sub.add_parser("catalog", help="the market-data catalog: import old data, show what it holds")
    catsub = catp.add_subparsers(dest="catalog_command", parser_class=_Parser)
    imp = catsub.add_parser("import", parents=[common], help="add an earlier run's database or a JSONL file")
    add_catalog_option(imp)
    isrc = imp.add_mutually_exclusive_group(required=True)
    isrc.add_argument("--from-db", metavar="OLD.db", help="a Kakashi database")
    isrc.add_argument("--input", metavar="FILE.jsonl", help="a replay file (data_schema.md)")
    inf = catsub.add_parser("info", parents=[common], help="dates, markets, rows and size")
    add_catalog_option(inf)
    from kakashi_tui.frontends.cli.catalog import add_backfill_parser

    add_backfill_parser(catsub, common, _api_base)
    from kakashi_tui.frontends.cli.plan import add_plan_parser

    add_plan_parser(sub, common, _Parser, _positive)
    return p


def _options(args: argparse.Namespace):
    from kakashi_tui.trading.runtime import Options

    return Options(
        source=getattr(args, "source", "sim"),
        db=args.db,
        seed=getattr(args, "seed", None),
        api_base=getattr(args, "api_base", None),
        beliefs=getattr(args, "beliefs", None),
        tickers=getattr(args, "ticker", []) or [],
        series=getattr(args, "series", []) or [],
        events=getattr(args, "event", []) or [],
    )


def cmd_snapshot(args: argparse.Namespace) -> int:
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import build_service, warn

    cfg = load_config(args.config)
    opts = _options(args)
    opts.book_all = True  # Kalshi: the books of the markets it snapshots, not only the believed ones
    service, close = build_service(opts, cfg)
    try:
        with _stop_on_signals(service):
            tickers, rejected, errors = service.collect()
        if opts.source == "kalshi" and errors and not tickers:
            if args.strict:
                raise KakashiError(f"Kalshi API unreachable: {errors[0]}")
            warn(f"Kalshi API unreachable ({errors[0]}); falling back to the simulated exchange")
            close()
            opts.source, opts.beliefs = "sim", None  # the simulator's oracle, not the beliefs, gives p_hat
            service, close = build_service(opts, cfg)
            tickers, rejected, errors = service.collect()
        for t in tickers:
            print(f"Snapshot saved for {t}")
        for e in errors:
            warn(e)
        for n in dict.fromkeys(service.collect_notes):  # what works but should be known (a fallback, a key)
            print(f"note: {safe_text(n)}")
        print(f"snapshot: {len(tickers)} saved, {rejected} rejected from {service.source_name}")
    finally:
        close()
    return 0


class _stop_on_signals:
    """SIGINT/SIGTERM stop the service at once (the main thread only waits), saying so: a clean
    quit (``status --health`` and the next start know it from a kill -9)."""

    def __init__(self, service) -> None:
        self.service = service
        self.old: dict = {}
        self.signalled = threading.Event()

    def _handler(self, signum, _frame) -> None:
        if not self.signalled.is_set():
            print("kakashi: stopping…", file=sys.stderr, flush=True)
        self.signalled.set()
        threading.Thread(target=self.service.stop, kwargs={"clean": True}, daemon=True).start()

    def __enter__(self):
        self.old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def cmd_run(args: argparse.Namespace) -> int:
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import build_service

    cfg = load_config(args.config)
    opts = _options(args)
    opts.record, opts.catalog = not args.no_record, args.catalog  # the desk and headless runs record as they trade
    if not args.headless:
        from kakashi_tui.frontends.desk.app import run_desk

        return run_desk(opts, cfg, interval=args.interval, ticks=args.ticks, log_path=args.log)
    from kakashi_tui.adapters import alerts as al
    from kakashi_tui.frontends.journal import Journal, Notices, previous_run_alert, state_alert
    from kakashi_tui.frontends.logfile import OperatorLog, default_log_path
    from kakashi_tui.trading.runtime import db_path

    # The same log file and alerts as the desk (journal.py): cron and tmux runs tell the week too.
    db = db_path(opts, cfg)
    log = OperatorLog(args.log or cfg.desk.log or default_log_path(db), db=db)
    webhook = al.Webhook(cfg.alerts.webhook_url, on_error=log.error) if cfg.alerts.webhook_url else None
    alert = al.Alerter(
        log=log,
        notify=lambda a: print(f"kakashi: ALERT {safe_text(a.message)}", file=sys.stderr, flush=True),
        webhook=webhook,
    )

    def said(line: str) -> None:
        log.write("EVENT", line)
        print(f"kakashi: {safe_text(line, ERROR_LIMIT)}", file=sys.stderr, flush=True)

    def on_state(old: str, new: str) -> None:
        if (a := state_alert(old, new)) is not None:
            alert(*a)

    try:
        service, close = build_service(opts, cfg, interval=args.interval, ticks=args.ticks, log=said)
    except BaseException:
        alert.close()
        log.close()
        raise
    service.on_report(lambda report: print(report.log_line(), flush=True))
    service.on_report(Journal(log, on_state, service.edge_threshold).on_report)
    notices = Notices(alert, fills=cfg.alerts.fills)  # each fill, each day's summary (as the desk)
    service.on_report(notices.on_report)
    service.on_day(notices.on_day)
    service.on_report(_feed_changes(service))
    _schedule_postmortems(service, cfg)
    try:
        print(
            f"kakashi: paper trading on {service.source_name} | db {safe_text(service.db_path)} | {service.state} "
            f"| PAPER ONLY | run {log.run_id}, log {safe_text(str(log.path))}",
            flush=True,
        )
        log.command(f"headless run started on {service.source_name}: {service.state}")
        restored = service.restored()
        if restored is not None:  # what it resumed, once, as the desk says it
            from kakashi_tui.frontends.fmt import COMMAND_HINTS, restored_line

            print(f"kakashi: {restored_line(restored, cfg.desk.time_zone, COMMAND_HINTS)}", flush=True)
        with _stop_on_signals(service) as sig:
            service.start()
            if (a := previous_run_alert(service)) is not None:  # kill -9, a crash: said once, as the desk does
                alert(*a)
            check = _liveness_lines(service, on_change=lambda line, down: _liveness_said(log, alert, line, down))
            while not service.finished.wait(LIVENESS_EVERY_S):
                check()
            service.stop(clean=True)  # (after a signal: waits for the signal's own stop to finish)
        log.flush_repeats()  # the counts first: the last line says how the run ended
        log.command("quit (signal)" if sig.signalled.is_set() else "finished")
        print(service.summary(), flush=True)
        stats = service.stats
    finally:
        close()
        alert.close()
        log.close()
    if stats.ticks == 0 and stats.failed_ticks:  # cron and supervisors read the exit code
        print(
            f"kakashi: error: no tick completed ({stats.failed_ticks} failed; the last: "
            f"{safe_text(stats.last_failure, ERROR_LIMIT)})",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


def _liveness_said(log, alert, line: str, down: bool) -> None:
    """A liveness change in the log; a feed or engine going down is an alert (webhook too)."""
    from kakashi_tui.adapters import alerts as al

    if down:
        alert(al.FEED_DOWN, line, "warning")
    else:
        log.write("EVENT", line)


LIVENESS_EVERY_S = 1.0  # a headless run reads the engine's heartbeat this often (liveness.py)


def _liveness_lines(service, out=None, on_change=None):
    """What the desk's status line says of a late engine, as a log line when it changes
    (``kakashi: FEED SLOW since 12:00:01: a fetch has been in flight 9s``, then ``feed back``):
    a hung fetch prints no tick line, so without this a headless run looks merely quiet.
    ``on_change(line, down)`` hears each change too (the log file and the alerts)."""
    from kakashi_tui.frontends.fmt import fmt_hms
    from kakashi_tui.trading.liveness import DEAD, DOWN, STALLED, LivenessWatch

    watch = LivenessWatch()

    def check() -> None:
        now, line = watch.update(service.heartbeat(), fmt_hms)
        if line is not None:
            print(f"kakashi: {line}", file=out or sys.stderr, flush=True)
            if on_change is not None:  # SLOW is said; DOWN, STALLED and a dead engine are alerts
                on_change(line, now.level in (DOWN, STALLED, DEAD))

    return check


def _feed_changes(service, out=None):
    """A report listener that says which feed is live once, and again only when it switches
    (``kakashi: feed websocket (2 live books)``, ``kakashi: feed polling (websocket down: why)``)."""
    from kakashi_tui.frontends.fmt import key_line

    said: list[str] = []
    key = [""]

    def on_report(report) -> None:
        f = service.feed
        if said != [f.kind]:
            said[:] = [f.kind]
            print(f"kakashi: feed {safe_text(f.label)}", file=out or sys.stdout, flush=True)
        if report.key_refused != key[0]:  # once when refused, once when accepted again
            key[0] = report.key_refused
            print(f"kakashi: {key_line(report.key_refused)}", file=out or sys.stdout, flush=True)

    return on_report


def _schedule_postmortems(service, cfg) -> None:
    """The headless engine writes its post-mortems on schedule too, as the desk does (at each
    UTC day roll on the engine's clock; never the same period twice)."""
    if cfg.desk.postmortem == "off":
        return
    from kakashi_tui.frontends.report.postmortem import DAY_MS, PostmortemSchedule, reports_dir

    sched = PostmortemSchedule(
        service.db_path, reports_dir(service.db_path, cfg.desk.reports_dir), cfg.desk.postmortem, fees=service.fees
    )
    last_day: list[int] = []

    def on_report(report) -> None:
        day = report.ts // DAY_MS
        if last_day and day != last_day[0]:
            try:
                for w in sched.run(report.ts):
                    print(f"kakashi: {w.kind} post-mortem written to {safe_text(w.path)}", flush=True)
            except Exception as e:  # a report must never stop trading
                print(f"kakashi: scheduled post-mortem failed: {safe_text(e)}", file=sys.stderr, flush=True)
        last_day[:] = [day]

    service.on_report(on_report)


def cmd_rearm(args: argparse.Namespace) -> int:
    from kakashi_tui.trading.requests import rearm_offline

    def confirm(reason: str) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise ConfigError("re-arming needs confirmation: run in a terminal or pass --yes")
        what = "Halted by the" if reason.startswith("drawdown stop:") else "Kill switch thrown"
        answer = input(f"{what} ({safe_text(reason)}). Re-arm and allow new paper orders? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    outcome = rearm_offline(_db_of(args), confirm)
    print(outcome)
    return 1 if outcome == "not re-armed" else 0


def _db_of(args: argparse.Namespace) -> str:
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import Options, db_path

    return db_path(Options(db=args.db), load_config(args.config))


def cmd_kill(args: argparse.Namespace) -> int:
    from kakashi_tui.trading.requests import send_request

    # A request row, not the engine's lock: an emergency stop works while an engine runs.
    how = send_request(_db_of(args), "kill", args.reason)
    print(f"kill switch thrown: no new paper orders until `kakashi rearm` ({how})")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    from kakashi_tui.trading.requests import send_request

    how = send_request(_db_of(args), "pause", "cli")
    print(f"paused: no new paper decisions until `kakashi resume` ({how})")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from kakashi_tui.trading.requests import send_request

    how = send_request(_db_of(args), "resume", "cli")
    print(f"resumed ({how})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from kakashi_tui.adapters.queries import connect_readonly, read_status
    from kakashi_tui.core.money import fmt_cc, fmt_count
    from kakashi_tui.frontends.fmt import fmt_price
    from kakashi_tui.trading.config import load_config

    if args.health:
        return _health(_db_of(args))
    # Its own read-only connection: never the writer's lock, never a write, never in the way.
    con = connect_readonly(_db_of(args))
    try:  # positions marked at the config's fees, as the engine marks them
        st = read_status(con, _db_of(args), load_config(args.config).engine_config().fees())
    finally:
        con.close()
    acct = st.account
    pending = f" | {st.pending_requests} request(s) pending" if st.pending_requests else ""
    print(
        f"cash {fmt_cc(acct.cash_cc)} | equity {fmt_cc(st.equity_cc)} | realised "
        f"{fmt_cc(acct.realized_cc)} | fees {fmt_cc(acct.fees_cc)} | kill switch "
        f"{'THROWN' if st.kill_switch else 'armed'}{' | paused' if st.paused else ''}{pending}"
    )
    print(_control_line(_db_of(args), st))
    from kakashi_tui.frontends.cli.plan import plan_status_line

    if (plan := plan_status_line(_db_of(args))) is not None:  # the plan in force: counts only
        print(safe_text(plan))
    print(_disk_line(_db_of(args)))
    unheaded = " (no head file beside the database: a deleted tail would not be seen)"
    print(
        f"ledger {st.ledger_entries} entries: hash chain intact, reconciled with fills, results and the"
        f" first deposit{'' if st.ledger_head else unheaded}"
    )
    for p in st.positions:
        print(
            f"  {safe_text(p.ticker)} {p.side.value.upper()} x{fmt_count(p.contracts)} avg {fmt_price(p.avg_price)}"
            f" cost {fmt_cc(p.cost_cc)}"
        )
    return 0


def _health(path: str) -> int:
    """``status --health``: one line and the exit code of ``trading/health.py`` (README: Health).
    Reads the run's record and the writer lock, not the ledger: cheap enough for cron each minute."""
    from kakashi_tui.adapters.queries import connect_readonly, daily_stop_hit, drawdown_stop, read_run, writer_lock_held
    from kakashi_tui.adapters.store.controls import Control, control_value
    from kakashi_tui.adapters.store.writer import now_wall_ms
    from kakashi_tui.trading.health import judge

    connect_readonly(path).close()  # no database, or not Kakashi's: the one-line error (exit 2)
    for _ in range(5):  # a run that starts or quits between the two looks: look again
        held = writer_lock_held(path)
        con = connect_readonly(path)
        try:
            run = read_run(con)
            keys = (Control.KILL_SWITCH, Control.KILL_REASON, Control.PAUSED, Control.PAUSE_REASON)
            ctl = dict(con.execute("SELECT key, value FROM control WHERE key IN (?, ?, ?, ?)", [k.value for k in keys]))
            stopped = daily_stop_hit(con)
            _peak, drawdown = drawdown_stop(con)
        finally:
            con.close()
        if writer_lock_held(path) == held:
            break
    h = judge(
        run,
        held=held,
        now_ms=now_wall_ms(),
        killed=bool(control_value(Control.KILL_SWITCH, ctl.get(Control.KILL_SWITCH.value))),
        kill_reason=str(ctl.get(Control.KILL_REASON.value) or ""),
        daily_stopped=stopped,
        paused=bool(control_value(Control.PAUSED, ctl.get(Control.PAUSED.value))),
        drawdown=drawdown,
        pause_reason=str(ctl.get(Control.PAUSE_REASON.value) or ""),
    )
    print(safe_text(h.line, ERROR_LIMIT))  # (a kill reason is any process's text: escaped, bounded)
    return h.code


def _disk_line(path: str) -> str:
    """``disk: database 96.8 MiB + WAL 5.8 MiB | 331.2 KiB a tick over 300 ticks | about 2.7 GiB a
    day at the latest ticks' pace (a tick every 0.27s)`` (queries.DiskUse says how)."""
    from kakashi_tui.adapters.queries import connect_readonly, disk_use
    from kakashi_tui.frontends.fmt import fmt_bytes

    con = connect_readonly(path)
    try:
        d = disk_use(con, path)
    finally:
        con.close()
    line = f"disk: database {fmt_bytes(d.file_bytes)} + WAL {fmt_bytes(d.wal_bytes)}"
    if d.bytes_per_tick is None:
        return f"{line} | no ticks yet"
    line += f" | {fmt_bytes(d.bytes_per_tick)} a tick over {d.ticks:,} ticks"
    if d.bytes_per_day is None or d.tick_gap_ms is None:
        return line
    return (
        f"{line} | about {fmt_bytes(d.bytes_per_day)} a day at the latest ticks' pace "
        f"(a tick every {d.tick_gap_ms / 1000:.3g}s)"
    )


def _control_line(path: str, st) -> str:
    """What stops new trades, and whether an engine is running on this database right now."""
    from kakashi_tui.adapters.queries import connect_readonly, daily_stop_hit, drawdown_stop, writer_lock_held
    from kakashi_tui.adapters.store.controls import Control
    from kakashi_tui.core.money import fmt_cc

    con = connect_readonly(path)
    try:
        stopped = daily_stop_hit(con)  # on the engine's day
        peak, drawdown = drawdown_stop(con)
        row = con.execute("SELECT value FROM control WHERE key = ?", (Control.PAUSE_REASON.value,)).fetchone()
        why = f" ({safe_text(row[0])})" if st.paused and row and row[0] else ""  # a plan's kill condition
    finally:
        con.close()
    running = writer_lock_held(path)  # the engine holds the file's writer lock (flock) while it runs
    # The reason is whatever `kakashi kill --reason` was given, by any process: escaped, bounded.
    kill = f"THROWN ({safe_text(st.kill_reason or 'operator')})" if st.kill_switch else "armed"
    return (
        f"kill switch {kill} | {'PAUSED' + why if st.paused else 'not paused'} | daily stop "
        f"{'HIT today (no new trades until 00:00 UTC)' if stopped else 'not hit'} | engine "
        f"{'RUNNING on this database' if running else 'not running'} | "
        + (
            f"HALTED by the {safe_text(drawdown)} (until `kakashi rearm`)"
            if drawdown
            else f"drawdown {fmt_cc(max(0, peak - st.equity_cc))} below the peak {fmt_cc(peak)}"
            if peak
            else "drawdown: no peak yet"
        )
    )


def cmd_report(args: argparse.Namespace) -> int:
    from kakashi_tui.adapters.store.writer import now_wall_ms
    from kakashi_tui.frontends.report.postmortem import export_postmortem, parse_days, reports_dir
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import Options, db_path

    cfg = load_config(args.config)
    since, until = parse_days(args.since, args.until)
    db = db_path(Options(db=args.db), cfg)
    out = export_postmortem(
        db,
        reports_dir(db, args.out or cfg.desk.reports_dir),
        now_wall_ms(),
        since,
        until,
        charts=not args.no_charts,
        fees=cfg.engine_config().fees(),
        catalog=cfg.catalog.dir,  # closing prices the database lacks: the catalog's candlesticks
        limits=cfg.engine_config().limits,
    )
    print(f"post-mortem written to {safe_text(out.path)}")
    return 0


def cmd_risk(args: argparse.Namespace) -> int:
    from decimal import Decimal

    from kakashi_tui.core.ruin import simulate
    from kakashi_tui.frontends.report import ruin
    from kakashi_tui.trading.config import load_config

    cfg = load_config(args.config)
    engine = cfg.engine_config()
    trades = args.trades or ruin.DEFAULT_TRADES
    paths = args.paths or ruin.DEFAULT_PATHS
    if trades * paths > 20_000_000:
        raise ConfigError(f"--trades x --paths is {trades * paths:,}: at most 20,000,000 (memory)")
    inputs = ruin.load_inputs(_db_of(args), engine.fees())
    spec = ruin.spec_for(
        inputs,
        engine.limits,
        n_trades=trades,
        paths=paths,
        seed=ruin.DEFAULT_SEED if args.seed is None else args.seed,
        exclusive=frozenset(args.exclusive),
        floor_pct=None if args.floor is None else Decimal(args.floor),
    )
    for line in ruin.terminal_lines(simulate(inputs.trades, spec), inputs):
        print(safe_text(line, None))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from datetime import datetime
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kakashi_tui.adapters.queries import connect_readonly
    from kakashi_tui.adapters.replay import (
        ReplayEstimator,
        ReplaySource,
        check_jsonl_target,
        group_ticks,
        read_jsonl,
        records_from_db,
        write_jsonl,
    )
    from kakashi_tui.adapters.userfiles import open_regular
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import REPLAY_COMMIT_EVERY, replay_service

    if args.catalog:
        from kakashi_tui.frontends.cli.catalog import cmd_replay_catalog

        return cmd_replay_catalog(args)
    if args.since or args.until or args.ticker or args.series or args.row_engine or args.recorded_settings:
        raise ConfigError("--since, --until, --ticker, --series, --row-engine and --recorded-settings need --catalog")
    cfg = load_config(args.config)
    if args.save_jsonl and not args.from_db:
        raise ConfigError("--save-jsonl needs --from-db")
    if args.force and not args.save_jsonl:
        raise ConfigError("--force needs --save-jsonl")
    target = args.db or f"replays/replay-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.db"
    if args.save_jsonl:  # before anything is read or made: never over a database, nor unasked
        check_jsonl_target(args.save_jsonl, overwrite=args.force, keep=(args.from_db, target))
    if args.input:
        if not Path(args.input).exists():
            raise ConfigError(f"no replay file at {safe_text(args.input)}")
        items = group_ticks(read_jsonl(args.input))  # a pipe or device: refused here, in one line
        with open_regular(args.input) as f:
            total = sum(1 for _ in f)
    else:
        connect_readonly(args.from_db).close()  # a clear error for a missing or corrupt file
        records = list(records_from_db(args.from_db))
        if args.save_jsonl:
            write_jsonl(records, args.save_jsonl, overwrite=args.force)
        total = len(records)
        items = group_ticks((i, rec, None) for i, rec in enumerate(records, start=1))
    source = ReplaySource(items)
    service, close = replay_service(target, source, ReplayEstimator(source), cfg)
    try:
        done = 0
        with Progress(
            TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
        ) as progress:
            task = progress.add_task("replay", total=total)

            def advance(_report: object) -> None:
                nonlocal done
                done += len(source.current.rows) + len(source.current.estimates) if source.current else 0
                progress.update(task, completed=done)

            service.on_report(advance)
            with _stop_on_signals(service):
                service.run_here(source.has_next, commit_every=REPLAY_COMMIT_EVERY)
        finish_replay(service, target, args.report)
    finally:
        close()
    return 0


def finish_replay(service, target: str, report_dir: str | None) -> None:
    """What every replay prints at the end: its summary, and the post-mortem when asked for."""
    from kakashi_tui.adapters.store.writer import now_wall_ms
    from kakashi_tui.frontends.report.postmortem import export_postmortem

    print(safe_text(service.replay_summary(target), None))  # the target is the operator's file name
    from kakashi_tui.adapters.queries import connect_readonly
    from kakashi_tui.frontends.report.band import replay_lines

    con = connect_readonly(target)  # the band: the same orders under the three queue models (#23)
    try:
        for line in replay_lines(con):
            print(safe_text(line, None))
    finally:
        con.close()
    if report_dir:
        out = export_postmortem(target, report_dir, now_wall_ms(), fees=service.fees)
        print(f"post-mortem written to {safe_text(out.path)}")


def _record(args: argparse.Namespace) -> int:
    from kakashi_tui.frontends.cli.catalog import cmd_record

    return cmd_record(args)


def _catalog(args: argparse.Namespace) -> int:
    from kakashi_tui.frontends.cli.catalog import cmd_catalog

    return cmd_catalog(args)


def _plan(args: argparse.Namespace) -> int:
    from kakashi_tui.frontends.cli.plan import cmd_plan

    return cmd_plan(args, lambda: _db_of(args))


#: Options that take a value (so the word after one is not mistaken for the subcommand).
_VALUE_OPTIONS = {
    "--db",
    "--config",
    "--source",
    "--ticker",
    "--series",
    "--event",
    "--seed",
    "--api-base",
    "--beliefs",
    "--log",
    "--catalog",
}


def _command_first(argv: list[str], commands) -> list[str]:
    """``kakashi --db X status`` is ``kakashi status --db X``: common options may come before the
    subcommand as well as after it."""
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-h", "--help", "--version"):
        i += 2 if argv[i] in _VALUE_OPTIONS else 1
    if 0 < i < len(argv) and argv[i] in commands:
        return [argv[i], *argv[:i], *argv[i + 1 :]]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    import os

    os.umask(0o077)  # the DB, its WAL, the lock and reports are the operator's alone
    commands = {
        "run": cmd_run,
        "snapshot": cmd_snapshot,
        "rearm": cmd_rearm,
        "status": cmd_status,
        "kill": cmd_kill,
        "pause": cmd_pause,
        "resume": cmd_resume,
        "report": cmd_report,
        "risk": cmd_risk,
        "replay": cmd_replay,
        "record": _record,
        "catalog": _catalog,
        "plan": _plan,
    }
    argv = _command_first(list(sys.argv[1:] if argv is None else argv), commands)
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]  # bare `kakashi [options]` is `kakashi run [options]`
    try:
        args = build_parser().parse_args(argv)
        return commands[args.command](args)
    except KakashiError as e:
        print(f"kakashi: error: {safe_text(str(e), ERROR_LIMIT)}", file=sys.stderr)
        return e.exit_code
    except (peewee.OperationalError, sqlite3.OperationalError) as e:
        from kakashi_tui.adapters.store.writer import db_trouble

        msg = str(e)
        hint = "another process holds it; try again" if "locked" in msg else (db_trouble(e) or msg)
        print(f"kakashi: error: database: {safe_text(hint)}", file=sys.stderr)
        return 1
    except (peewee.DatabaseError, sqlite3.DatabaseError) as e:
        print(f"kakashi: error: database is unreadable or corrupt ({safe_text(str(e))})", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `kakashi ... | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("kakashi: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        name = safe_text(str(getattr(e, "filename", "") or ""))  # the operator's path, as they typed it
        print(f"kakashi: error: {safe_text(str(e.strerror or e))}: {name}".rstrip(": "), file=sys.stderr)
        return 1
    except Exception as e:  # a bug: one line for the operator, the traceback in a file for us
        import traceback

        from kakashi_tui.adapters.crashlog import write_crash_log

        path = write_crash_log(traceback.format_exc())
        where = f"; details in {path}" if path else ""
        print(
            f"kakashi: internal error: {e.__class__.__name__}: {safe_text(str(e))}{where} (what was stored is intact)",
            file=sys.stderr,
        )
        return 70
