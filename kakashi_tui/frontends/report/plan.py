"""The post-mortem's grade of the plan in force (issue #24, 9): on track (n of N), failed (which kill
condition, when, the numbers it read) or passed / not passed at its sample.

The outcome is the one the engine stored, once (``plans`` row); the numbers are ``core/plan.py``'s
``measure`` over ``queries.plan_trades``: the engine's own reads and functions, so the report and
the live checks cannot disagree.
"""

from __future__ import annotations

import sqlite3

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.closing import Candles
from kakashi_tui.core.plan import (
    MEASURES,
    Plan,
    days_between,
    max_fall_pct,
    measure,
    metric_text,
    progress,
    settled_order,
    state_of,
)
from kakashi_tui.frontends.fmt import fmt_utc


def _md(text: str) -> str:
    """Text the operator wrote, in a Markdown table cell or line: pipes and newlines escaped."""
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def plan_lines(con: sqlite3.Connection, candles: Candles | None) -> list[str]:
    """The plan section's lines (every plan's state; the latest graded in full); closing lines
    the database lacks from the catalog's ``candles``, as the report's entries have theirs."""
    every = queries.plans(con)
    if not every:
        return [
            "No plan registered. A plan (`kakashi plan new`) states the hypothesis, the sample it needs, its kill "
            "conditions and its success criteria before the evidence comes in; the engine then pauses on a kill "
            "condition and judges success once, at the sample."
        ]
    last_ts = queries.last_tick_ts(con)
    p = every[-1]
    trades = settled_order(queries.plan_trades(con, p, candles=candles))
    start, equities = queries.plan_ticks(con, p)
    days = days_between(start, last_ts)
    m = measure(trades, max_fall_pct(equities), days)
    out = [
        f"Plan {p.id}, registered {fmt_utc(p.created_ms)} (wall clock): {_md(p.hypothesis)}",
        "",
        "| | |",
        "|---|---|",
        f"| sample | {p.sample.text} |",
        *(f"| kill | `{c.text}` |" for c in p.kill),
        *(f"| success | `{c.text}` |" for c in p.success),
        f"| beliefs | {_md(p.beliefs)} |",
        "",
        *grade(p, len(trades), days),
        "",
        "Its numbers now, over every settled trade of the plan (the whole plan, whatever the report's period):",
        "",
        "| " + " | ".join(MEASURES) + " |",
        "|" + "---|" * len(MEASURES),
        "| " + " | ".join(metric_text(k, m.get(k)) for k in MEASURES) + " |",
        "",
        "CLV after fees in cents per contract, PnL in dollars per settled trade, skill the Brier skill against the "
        "market's mid at decision, each with its 95% interval resampling events (as in the sections above); "
        "drawdown the largest fall of the tick equity below its peak since the plan's first tick.",
    ]
    if len(every) > 1:
        out += ["", "Earlier plans:", ""]
        for q in every[:-1]:
            n = queries.plan_settled_count(con, q)
            out.append(f"- plan {q.id} ({_md(q.hypothesis[:60])}): {state_of(q)}, {progress(q, n, None)}")
    return out


def grade(p: Plan, n: int, days: float | None) -> list[str]:
    """The plan's grade in words."""
    state = state_of(p)
    if state == "failed":
        return [
            f"**FAILED**: kill condition `{p.killed_by}` met at {fmt_utc(p.killed_ts)} (the engine's clock): "
            f"{_md(p.killed_detail)}. The engine paused trading then; success was never judged."
        ]
    if state in ("passed", "not passed"):
        return [
            f"**{state.upper()}** at its sample of {p.sample.text}, judged once at {fmt_utc(p.judged_ts)} (the "
            f"engine's clock): {_md(p.verdict_detail)}."
        ]
    if state == "superseded":
        return [f"Superseded by plan {p.superseded_by} at {progress(p, n, days)}: never judged."]
    return [
        f"**On track**: {progress(p, n, days)}; no kill condition met. Success is judged once, when the sample is "
        "reached, never before: judging it at every trade would give noise a chance to pass at each look."
    ]
