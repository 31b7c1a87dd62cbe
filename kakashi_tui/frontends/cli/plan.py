"""``kakashi plan``: a plan registered before the evidence (issue #24, 9; core/plan.py has the
grammar, README "Plans" the commands).

- ``plan new``: the hypothesis, the sample, kill conditions and success criteria (flags, or a TOML
  file with the same keys), with the strategy settings and the beliefs source of the configuration
  in force, written as a new row. It takes the database's writer lock: with no engine running.
- ``plan edit ID``: the same, in place, only while no decision or fill has come after the plan.
- ``plan show [ID]`` (the latest by default) and ``plan list``: read-only, beside a running engine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tomllib
from collections.abc import Callable
from typing import Any

from kakashi_tui.core.errors import ConfigError, StoreError
from kakashi_tui.core.plan import (
    MEASURES,
    Condition,
    Plan,
    PlanError,
    Sample,
    check_success,
    parse_condition,
    parse_sample,
)
from kakashi_tui.core.text import safe_text

#: The keys a plan file may hold (a TOML file: README "Plans").
FILE_KEYS = ("hypothesis", "sample", "kill", "success")
MAX_FILE_BYTES = 64 * 1024
MAX_HYPOTHESIS = 2000


def add_plan_parser(sub, common: argparse.ArgumentParser, parser_class, whole) -> None:
    """``kakashi plan new|edit|show|list`` (``whole``: the command line's whole-number type)."""
    p = sub.add_parser("plan", help="a plan registered before the evidence: plan new, show, list, edit")
    psub = p.add_subparsers(dest="plan_command", parser_class=parser_class)

    def study(q: argparse.ArgumentParser) -> None:
        q.add_argument("--hypothesis", metavar="TEXT", help="what the plan tests, in words")
        q.add_argument("--sample", metavar="N UNIT", help="the sample it needs: '200 trades' or '30 days'")
        q.add_argument(
            "--kill", action="append", default=[], metavar="COND", help="a kill condition (repeatable): trading pauses"
        )
        q.add_argument(
            "--success",
            action="append",
            default=[],
            metavar="COND",
            help="a success criterion (repeatable, all must hold), judged once at the sample",
        )
        q.add_argument("--file", metavar="PLAN.toml", help="hypothesis, sample, kill and success from a TOML file")
        q.add_argument("--source", choices=["sim", "kalshi"], default="sim", help="the feed the plan trades on")
        q.add_argument("--beliefs", metavar="FILE", help="with --source kalshi: the beliefs file giving p_hat")

    study(psub.add_parser("new", parents=[common], help="register a new plan (before the run that trades it)"))
    edit = psub.add_parser("edit", parents=[common], help="change a plan no trade has come after yet")
    edit.add_argument("id", type=whole, help="the plan's number")
    study(edit)
    show = psub.add_parser("show", parents=[common], help="a plan, its state and its numbers (default: the latest)")
    show.add_argument("id", nargs="?", type=whole, help="the plan's number")
    psub.add_parser("list", parents=[common], help="every plan, one line each")


def cmd_plan(args: argparse.Namespace, db_of: Callable[[], str]) -> int:
    what = getattr(args, "plan_command", None)
    if what not in ("new", "edit", "show", "list"):
        raise ConfigError("plan needs a command: new, edit, show or list (see 'kakashi plan --help')")
    db = db_of()
    if what in ("show", "list"):
        return _show(db, getattr(args, "id", None), args.config) if what == "show" else _list(db)
    return _register(args, db)


# -- new and edit ---------------------------------------------------------------------------------
def _read_file(path: str) -> dict[str, Any]:
    from kakashi_tui.adapters.userfiles import read_regular

    try:
        raw = read_regular(path, MAX_FILE_BYTES)
    except OSError as e:
        raise ConfigError(f"cannot read plan file {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigError(f"cannot read plan file {path!r}: {e}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"plan file {path} is larger than {MAX_FILE_BYTES // 1024} KiB: not a plan")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
        raise ConfigError(f"plan file {path} is not valid TOML: {why}") from None
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ConfigError(f"plan file {path}: unknown key {unknown[0]!r} (a plan file holds {', '.join(FILE_KEYS)})")
    for key in ("hypothesis", "sample"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"plan file {path}: {key} must be text")
    for key in ("kill", "success"):
        v = data.get(key, [])
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"plan file {path}: {key} must be a condition or a list of conditions (text)")
        data[key] = v
    return data


def study_of(args: argparse.Namespace) -> tuple[str, Sample, tuple[Condition, ...], tuple[Condition, ...]]:
    """(hypothesis, sample, kill conditions, success criteria) from the file and the flags (a flag
    given wins over the file's key; conditions given both ways are all kept)."""
    data = _read_file(args.file) if args.file else {}
    hypothesis = args.hypothesis if args.hypothesis is not None else data.get("hypothesis", "")
    if not hypothesis.strip():
        raise PlanError("plan: a hypothesis is needed (--hypothesis TEXT, or hypothesis = in the plan file)")
    if len(hypothesis) > MAX_HYPOTHESIS:
        raise PlanError(f"plan: the hypothesis is {len(hypothesis):,} characters long (at most {MAX_HYPOTHESIS:,})")
    sample_text = args.sample if args.sample is not None else data.get("sample")
    if sample_text is None:
        raise PlanError("plan: a sample is needed (--sample '200 trades' or '30 days')")
    sample = parse_sample(sample_text)
    kill = tuple(parse_condition(c, "kill condition") for c in [*data.get("kill", []), *args.kill])
    success = tuple(parse_condition(c, "success") for c in [*data.get("success", []), *args.success])
    if not success:
        raise PlanError("plan: at least one success criterion is needed (--success COND), judged once at the sample")
    check_success(success, sample)
    return hypothesis.strip(), sample, kill, success


def settings_in_force(args: argparse.Namespace) -> tuple[str, str]:
    """(the strategy settings as JSON, the beliefs source) of the configuration in force."""
    from kakashi_tui.adapters.sim import NOISE_SOURCE, ORACLE_SOURCE
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import Options, settings

    cfg = load_config(args.config)
    config = args.config or os.environ.get("KAKASHI_CONFIG") or None
    out: dict[str, Any] = {
        "config": config,
        "source": args.source,
        "bankroll": str(cfg.bankroll),
        "strategy": cfg.strategy.model_dump(mode="json"),
        "risk": cfg.risk.model_dump(mode="json"),
        "fees": cfg.fees.model_dump(mode="json"),
    }
    if args.source == "sim":
        if args.beliefs:
            raise ConfigError("--beliefs gives p_hat for Kalshi's markets; the simulator has its own (--source kalshi)")
        out["sim"] = cfg.sim.model_dump(mode="json")
        label = NOISE_SOURCE if cfg.sim.forecaster == "noise" else ORACLE_SOURCE
        beliefs = f"{label}, noise sd {cfg.sim.oracle_noise}"
    else:
        path = settings(Options(source="kalshi", db=args.db, beliefs=args.beliefs), cfg).beliefs
        beliefs = "no beliefs file (nothing is traded)" if not path else _beliefs_words(path)
    return json.dumps(out, sort_keys=True), beliefs


def _beliefs_words(path: str) -> str:
    from kakashi_tui.adapters.userfiles import read_regular

    try:
        raw = read_regular(path, 64 << 20)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read beliefs {path}: {getattr(e, 'strerror', None) or e}") from None
    return f"beliefs file {os.path.abspath(path)} (sha256 {hashlib.sha256(raw).hexdigest()[:16]} when registered)"


def _register(args: argparse.Namespace, db: str) -> int:
    from kakashi_tui.adapters.store.writer import Store, now_wall_ms

    hypothesis, sample, kill, success = study_of(args)
    settings, beliefs = settings_in_force(args)
    try:
        store = Store(db, lock_wait=0)
    except StoreError as e:
        if "already writing" in str(e):
            raise StoreError(
                f"an engine is running on {db}: register the plan before the run that trades it (stop it first)"
            ) from None
        raise
    try:
        study = dict(hypothesis=hypothesis, settings=settings, beliefs=beliefs, sample=sample, kill=kill)
        if args.plan_command == "edit":
            store.update_plan(args.id, success=success, **study)  # type: ignore[arg-type]
            pid, done = args.id, "changed"
        else:
            pid = store.add_plan(created_ms=now_wall_ms(), success=success, **study)  # type: ignore[arg-type]
            done = "registered"
    finally:
        store.close()
    print(f"plan {pid} {done}: sample {sample.text}; {len(kill)} kill condition(s); success judged once at the sample")
    for c in kill:
        print(f"  kill:    {c.text}")
    for c in success:
        print(f"  success: {c.text}")
    print(f"  beliefs: {safe_text(beliefs)}")
    print("trading on it begins with the next decision; from then on it cannot change (a new plan is a new row)")
    return 0


# -- show and list ---------------------------------------------------------------------------------
def _plans(db: str) -> tuple[list[Plan], Any]:
    from kakashi_tui.adapters.queries import connect_readonly, plans

    con = connect_readonly(db)
    try:
        return plans(con), con
    except BaseException:
        con.close()
        raise


def plan_status_line(db: str) -> str | None:
    """``kakashi status``'s line for the plan in force (None: no plan): counts only, no statistics."""
    from kakashi_tui.adapters.queries import (
        connect_readonly,
        last_tick_ts,
        latest_plan,
        plan_settled_count,
        plan_start_ts,
    )
    from kakashi_tui.core.plan import days_between, state_line

    con = connect_readonly(db)
    try:
        p = latest_plan(con)
        if p is None:
            return None
        return state_line(p, plan_settled_count(con, p), days_between(plan_start_ts(con, p), last_tick_ts(con)))
    finally:
        con.close()


def _list(db: str) -> int:
    from kakashi_tui.adapters.queries import last_tick_ts, plan_settled_count, plan_start_ts
    from kakashi_tui.core.plan import days_between, state_line
    from kakashi_tui.frontends.fmt import fmt_utc

    every, con = _plans(db)
    try:
        if not every:
            print(f"no plan registered in {safe_text(db)} (kakashi plan new)")
            return 0
        last = last_tick_ts(con)
        for p in every:
            line = state_line(p, plan_settled_count(con, p), days_between(plan_start_ts(con, p), last))
            hyp = p.hypothesis if len(p.hypothesis) <= 60 else p.hypothesis[:57] + "..."
            print(f"{safe_text(line)} | registered {fmt_utc(p.created_ms)} | {safe_text(hyp)}")
    finally:
        con.close()
    return 0


def _show(db: str, pid: int | None, config: str | None) -> int:
    from kakashi_tui.adapters.closing import Candles, catalog_of
    from kakashi_tui.adapters.queries import last_tick_ts, plan_ticks, plan_trades
    from kakashi_tui.core.plan import days_between, max_fall_pct, measure, metric_text, settled_order, state_line
    from kakashi_tui.frontends.fmt import fmt_utc
    from kakashi_tui.trading.config import load_config

    every, con = _plans(db)
    try:
        if not every:
            raise ConfigError(f"no plan registered in {db} (kakashi plan new)")
        chosen = [p for p in every if pid is None or p.id == pid]
        if not chosen:
            raise ConfigError(f"no plan {pid} in {db} (plans 1 to {every[-1].id}: kakashi plan list)")
        p = chosen[-1]
        # closing lines the database lacks from the catalog's candlesticks, as the report's
        trades = plan_trades(con, p, candles=Candles(catalog_of(db, load_config(config).catalog.dir)))
        start, equities = plan_ticks(con, p)
        days = days_between(start, last_tick_ts(con))
        m = measure(settled_order(trades), max_fall_pct(equities), days)
    finally:
        con.close()
    print(safe_text(state_line(p, len(trades), days)))
    print(f"registered {fmt_utc(p.created_ms)}; trades on it: the fills after fill {p.after_fill_id}")
    print(f"hypothesis: {safe_text(p.hypothesis)}")
    print(f"sample:     {p.sample.text}")
    for c in p.kill:
        print(f"kill:       {c.text}")
    for c in p.success:
        print(f"success:    {c.text}")
    print(f"beliefs:    {safe_text(p.beliefs)}")
    st = p.settings_dict()
    strategy = st.get("strategy")
    if isinstance(strategy, dict):
        print("strategy:   " + safe_text(", ".join(f"{k} {v}" for k, v in sorted(strategy.items()))))
    if p.judged_ts is not None:
        print(f"verdict:    {p.verdict.upper()} at the sample ({fmt_utc(p.judged_ts)}): {safe_text(p.verdict_detail)}")
    if p.killed_ts is not None:
        print(f"failed:     {fmt_utc(p.killed_ts)}: {safe_text(p.killed_by)} ({safe_text(p.killed_detail)})")
    print("now:        " + ", ".join(f"{k} {metric_text(k, m.get(k))}" for k in MEASURES))
    return 0
