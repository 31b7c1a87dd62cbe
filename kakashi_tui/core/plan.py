"""A plan registered before the evidence (issue #24, 9): its small grammar, its numbers and its grade.

Pure: no I/O. The store keeps a plan (``plans`` table), the engine checks its kill conditions as
trades settle (``trading/plancheck.py``), the report grades it (``frontends/report/plan.py``); all
three read the plan and its numbers through this module, and the numbers' statistics through
``core/intervals.py`` (the report's own functions), so nothing is computed twice.

**The grammar** (a condition, strict; anything else is refused with the reason)::

    condition := clause { "and" clause } [ "after" WHOLE ( "trades" | "days" ) ]
    clause    := measure ( "<" | "<=" | ">" | ">=" ) number
    number    := [ "-" | "+" ] [ "$" ] digits [ "." digits ] [ "%" | "c" | "¢" ]
    sample    := WHOLE ( "trades" | "days" )

``%`` goes with ``drawdown`` only, ``c`` / ``¢`` with the ``clv`` measures, ``$`` with the ``pnl``
measures (each optional: the measure's unit is fixed). A clause whose measure has no value yet (an
interval needs settled trades in two events) is not met. ``after N trades`` holds once N trades
of the plan have settled (``after N days``: N days since its first tick).

**The measures**, over the plan's settled trades (buys filled after it was registered, whose
market's settlement is booked):

- ``trades``: how many; ``days``: days since the plan's first tick (the engine's clock);
- ``clv``, ``clv_lo95``, ``clv_hi95``: mean closing-line value after fees, cents per contract,
  with its 95% interval resampling events (the report's ``clustered_mean``);
- ``pnl``, ``pnl_lo95``, ``pnl_hi95``: mean realised PnL per settled trade, dollars, likewise;
- ``skill``, ``skill_lo95``, ``skill_hi95``: Brier skill of p̂ against the market's mid at the
  decision, 1 - Brier(p̂) / Brier(market), likewise (the report's ``clustered_skill``);
- ``drawdown``: the largest fall of the tick equity below its peak since the plan's first tick, %.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from kakashi_tui.core.errors import ConfigError

UNITS = ("trades", "days")
OPS = ("<", "<=", ">", ">=")
#: measure -> (its unit in words, the suffix or prefix it may carry)
MEASURES: dict[str, tuple[str, str]] = {
    "trades": ("settled trades", ""),
    "days": ("days since the plan's first tick", ""),
    "clv": ("mean CLV after fees, cents per contract", "c"),
    "clv_lo95": ("CLV's 95% lower bound, cents", "c"),
    "clv_hi95": ("CLV's 95% upper bound, cents", "c"),
    "pnl": ("mean realised PnL per settled trade, dollars", "$"),
    "pnl_lo95": ("PnL's 95% lower bound, dollars", "$"),
    "pnl_hi95": ("PnL's 95% upper bound, dollars", "$"),
    "skill": ("Brier skill against the market's mid at decision", ""),
    "skill_lo95": ("skill's 95% lower bound", ""),
    "skill_hi95": ("skill's 95% upper bound", ""),
    "drawdown": ("largest fall below the equity peak since the plan began, %", "%"),
}
#: Which statistic (and its cost: a bootstrap) each measure needs.
GROUPS = {"clv": "clv", "clv_lo95": "clv", "clv_hi95": "clv", "pnl": "pnl", "pnl_lo95": "pnl", "pnl_hi95": "pnl"}
GROUPS |= {"skill": "skill", "skill_lo95": "skill", "skill_hi95": "skill"}
MAX_TEXT = 300  # characters of one condition
MAX_SAMPLE = 1_000_000
MAX_NUMBER = Decimal(1_000_000)

Metrics = Mapping[str, float | None]


class PlanError(ConfigError):
    """A plan the operator wrote that cannot be registered (one line, exit 2)."""


# -- the grammar --------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<op><=|>=|<|>|==|=|!=)|(?P<num>[-+]?\$?\d+(?:\.\d+)?(?:%|¢|c(?![A-Za-z0-9_]))?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\S))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # (only trailing blanks: stripped above)
            break
        kind = m.lastgroup or "bad"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _number(tok: str, measure: str) -> Decimal:
    unit = MEASURES[measure][1]
    body = tok
    mark = ""
    if body.endswith(("%", "¢")) or (body.endswith("c")):
        mark, body = body[-1], body[:-1]
    sign = ""
    if body[:1] in "+-":
        sign, body = body[:1], body[1:]
    if body.startswith("$"):
        if unit != "$":
            raise ValueError(f"'$' goes with the pnl measures, not {measure}")
        body = body[1:]
    if mark:
        want = "c" if mark in ("c", "¢") else mark
        if want != unit:
            owner = {"%": "drawdown", "c": "the clv measures"}[want]
            raise ValueError(f"'{mark}' goes with {owner}, not {measure}")
    try:
        value = Decimal(sign + body)
    except InvalidOperation:  # (the token's pattern allows none; kept for safety)
        raise ValueError(f"{tok!r} is not a number") from None
    if abs(value) > MAX_NUMBER:
        raise ValueError(f"{tok} is out of range (at most {MAX_NUMBER:,} either way)")
    return value


def _measure_name(word: str) -> str:
    if word in MEASURES:
        return word
    near = difflib.get_close_matches(word, MEASURES, n=1)
    hint = f"; did you mean {near[0]}?" if near else ""
    raise ValueError(f"unknown measure {word!r} (one of {', '.join(MEASURES)}){hint}")


def _whole(tok: str, what: str) -> int:
    if not tok.isdigit():
        raise ValueError(f"expected a whole number {what}, got {tok!r}")
    n = int(tok)
    if not 1 <= n <= MAX_SAMPLE:
        raise ValueError(f"{what}: {n} is out of range (1 to {MAX_SAMPLE:,})")
    return n


def _unit(tok: tuple[str, str] | None, after: str) -> str:
    word = tok[1] if tok is not None else ""
    if word in ("trade", "trades"):
        return "trades"
    if word in ("day", "days"):
        return "days"
    raise ValueError(f"expected 'trades' or 'days' after {after!r}" + (f", got {word!r}" if word else ""))


def _fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "+0") else text


@dataclass(frozen=True)
class Clause:
    measure: str
    op: str
    value: Decimal

    @property
    def text(self) -> str:
        unit = MEASURES[self.measure][1]
        number = _fmt(self.value)
        if unit == "%":
            number += "%"
        return f"{self.measure} {self.op} {number}"

    def holds(self, x: float | None) -> bool:
        if x is None or math.isnan(x):
            return False
        v = float(self.value)
        return {"<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v}[self.op]


@dataclass(frozen=True)
class Sample:
    n: int
    unit: str  # trades | days

    @property
    def text(self) -> str:
        return f"{self.n} {self.unit}"

    def reached(self, trades: int, days: float | None) -> bool:
        return trades >= self.n if self.unit == "trades" else days is not None and days >= self.n


@dataclass(frozen=True)
class Condition:
    clauses: tuple[Clause, ...]
    after: Sample | None = None

    @property
    def text(self) -> str:
        body = " and ".join(c.text for c in self.clauses)
        return f"{body} after {self.after.text}" if self.after else body

    @property
    def measures(self) -> set[str]:
        return {c.measure for c in self.clauses} | ({self.after.unit} if self.after else set())

    def met(self, m: Metrics) -> bool:
        if self.after is not None and not self.after.reached(int(m.get("trades") or 0), m.get("days")):
            return False
        return all(c.holds(m.get(c.measure)) for c in self.clauses)

    def numbers(self, m: Metrics) -> str:
        """What the condition read: ``clv_hi95 -0.41, trades 52``."""
        names = list(dict.fromkeys([*(c.measure for c in self.clauses), "trades"]))
        return ", ".join(f"{n} {metric_text(n, m.get(n))}" for n in names)


def parse_condition(text: str, what: str = "condition") -> Condition:
    """One condition of the grammar; a ``PlanError`` naming ``what``, the text and the problem."""
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("it is empty")
        if len(text) > MAX_TEXT:
            raise ValueError(f"it is {len(text)} characters long (at most {MAX_TEXT})")
        return _parse(_tokens(text))
    except ValueError as e:
        raise PlanError(f"plan: {what} {shown!r}: {e}") from None


def _parse(toks: list[tuple[str, str]]) -> Condition:
    clauses: list[Clause] = []
    after: Sample | None = None
    i = 0

    def at(k: int) -> tuple[str, str] | None:
        return toks[k] if k < len(toks) else None

    while True:
        tok = at(i)
        if tok is None:
            raise ValueError("expected a measure" + (f" after {toks[i - 1][1]!r}" if i else ""))
        if tok[0] != "word" or tok[1] in ("and", "after", "or"):
            raise ValueError(f"expected a measure, got {tok[1]!r}")
        measure = _measure_name(tok[1])
        op = at(i + 1)
        if op is None or op[0] != "op":
            raise ValueError(f"expected <, <=, > or >= after {measure!r}" + (f", got {op[1]!r}" if op else ""))
        if op[1] not in OPS:
            raise ValueError(f"{op[1]!r} is not a comparison here: use <, <=, > or >=")
        num = at(i + 2)
        if num is None or num[0] != "num":
            raise ValueError(f"expected a number after {measure} {op[1]}" + (f", got {num[1]!r}" if num else ""))
        clauses.append(Clause(measure, op[1], _number(num[1], measure)))
        i += 3
        nxt = at(i)
        if nxt is None:
            break
        if nxt == ("word", "and"):
            i += 1
            continue
        if nxt == ("word", "after"):
            n = at(i + 1)
            if n is None:
                raise ValueError("expected a whole number of trades or days after 'after'")
            count = _whole(n[1], "after 'after'")
            after = Sample(count, _unit(at(i + 2), f"after {count}"))
            i += 3
            if (rest := at(i)) is not None:
                raise ValueError(f"unexpected {rest[1]!r} after {after.text!r}")
            break
        if nxt == ("word", "or"):
            raise ValueError("'or' is not in the grammar: give each alternative as a condition of its own")
        raise ValueError(f"unexpected {nxt[1]!r}: expected 'and' or 'after'")
    return Condition(tuple(clauses), after)


def parse_sample(text: str) -> Sample:
    """``200 trades`` or ``30 days`` (a ``PlanError`` otherwise)."""
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        toks = _tokens(text) if isinstance(text, str) and len(text) <= MAX_TEXT else []
        if not toks:
            raise ValueError("expected a whole number of trades or days, e.g. '200 trades'")
        n = _whole(toks[0][1], "of trades or days")
        s = Sample(n, _unit(toks[1] if len(toks) > 1 else None, str(n)))
        if len(toks) > 2:
            raise ValueError(f"unexpected {toks[2][1]!r} after {s.text!r}")
        return s
    except ValueError as e:
        raise PlanError(f"plan: sample {shown!r}: {e}") from None


def check_success(success: Sequence[Condition], sample: Sample) -> None:
    """Success is judged once, at the sample: an ``after`` that says otherwise is refused."""
    for c in success:
        if c.after is not None and c.after != sample:
            raise PlanError(
                f"plan: success {c.text!r}: success is judged once, at the plan's sample ({sample.text}); "
                f"'after {c.after.text}' disagrees (leave 'after' out)"
            )


# -- the numbers ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlanTrade:
    """A settled trade of a plan: a buy filled after the plan was registered, whose market settled."""

    fill_id: int
    settled_ts: int  # when Kakashi booked its market's settlement (the engine's clock)
    ticker: str
    event: str
    side: str  # yes | no
    contracts: float
    price: float  # dollars per contract paid
    fee: float  # the entry's fee, dollars per contract
    p_hat: float | None  # P(YES) the decision held
    market: float | None  # the YES mid at the decision
    outcome: int | None  # 1 YES, 0 NO (None: not a yes/no result)
    close: float | None  # the YES closing mid (None: no two-sided quote before it stopped trading)
    pnl: float  # realised PnL of this trade, dollars

    @property
    def clv_fees(self) -> float | None:
        from kakashi_tui.core.intervals import clv

        return None if self.close is None else clv(self.side, self.price, self.close, self.fee)


def settled_order(trades: Sequence[PlanTrade]) -> list[PlanTrade]:
    """The order trades count towards the sample: by settlement, then by fill."""
    return sorted(trades, key=lambda t: (t.settled_ts, t.fill_id))


def wanted_groups(conditions: Sequence[Condition]) -> set[str]:
    return {GROUPS[m] for c in conditions for m in c.measures if m in GROUPS}


def measure(
    trades: Sequence[PlanTrade],
    drawdown_pct: float | None = None,
    days: float | None = None,
    groups: Collection[str] = ("clv", "pnl", "skill"),
) -> dict[str, float | None]:
    """The measures of ``trades`` (only the ``groups`` of statistics asked for: each is a
    bootstrap). numpy is imported here, when a statistic is asked for."""
    out: dict[str, float | None] = {"trades": float(len(trades)), "days": days, "drawdown": drawdown_pct}
    for name in ("clv", "pnl", "skill"):
        out.update({name: None, f"{name}_lo95": None, f"{name}_hi95": None})
    if not groups or not trades:
        return out
    from kakashi_tui.core import intervals as iv

    def put(name: str, interval: iv.Interval, scale: float = 1.0) -> None:
        est = interval.estimate
        out[name] = None if math.isnan(est) else est * scale
        out[f"{name}_lo95"] = None if interval.lo is None else interval.lo * scale
        out[f"{name}_hi95"] = None if interval.hi is None else interval.hi * scale

    if "clv" in groups:
        rows = [(t.event, c) for t in trades if (c := t.clv_fees) is not None]
        if rows:
            put("clv", iv.clustered_mean([c for _e, c in rows], iv.cluster_index([e for e, _c in rows])), 100.0)
    if "pnl" in groups:
        put("pnl", iv.clustered_mean([t.pnl for t in trades], iv.cluster_index([t.event for t in trades])))
    if "skill" in groups:
        scored = [t for t in trades if t.p_hat is not None and t.market is not None and t.outcome is not None]
        if scored:
            y = [float(t.outcome) for t in scored if t.outcome is not None]
            groups_ = iv.cluster_index([t.event for t in scored])
            sp = iv.brier_scores([t.p_hat for t in scored], y)  # type: ignore[arg-type]
            sm = iv.brier_scores([t.market for t in scored], y)  # type: ignore[arg-type]
            put("skill", iv.clustered_skill(sp, sm, groups_))
    return out


def metric_text(name: str, x: float | None) -> str:
    """A measure's value as the plan shows it: ``-0.41c``, ``$0.12``, ``8.4%``, ``52``."""
    if x is None:
        return "n/a"
    unit = MEASURES[name][1]
    if name == "trades":
        return str(int(x))
    if name == "days":
        return f"{x:.2f}"
    if unit == "c":
        return f"{x:+.2f}c"
    if unit == "$":
        return f"{'-' if x < 0 else '+'}${abs(x):.4f}"
    if unit == "%":
        return f"{x:.2f}%"
    return f"{x:+.4f}"


# -- the plan -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """A plan as registered (its study) and as it stands (what the engine recorded, once each)."""

    id: int
    created_ms: int  # wall clock
    hypothesis: str
    settings: str  # JSON: the configuration in force when it was registered
    beliefs: str  # where p̂ comes from
    sample: Sample
    kill: tuple[Condition, ...]
    success: tuple[Condition, ...]
    after_decision_id: int  # trading on the plan: the decisions and fills after these
    after_fill_id: int
    after_tick: int
    killed_ts: int | None = None
    killed_by: str = ""
    killed_detail: str = ""
    judged_ts: int | None = None
    verdict: str = ""  # passed | not passed
    verdict_detail: str = ""
    upto_fill_id: int | None = None  # a newer plan took over after this fill (None: this is the latest)
    superseded_by: int | None = None

    @property
    def done(self) -> bool:
        """Failed or judged: nothing more is checked."""
        return self.killed_ts is not None or self.judged_ts is not None

    def settings_dict(self) -> dict[str, object]:
        try:
            out = json.loads(self.settings)
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}


def conditions_json(conds: Sequence[Condition]) -> str:
    return json.dumps([c.text for c in conds])


def conditions_of(text: str, what: str) -> tuple[Condition, ...]:
    """Conditions as stored (a JSON list of their texts), each parsed again."""
    try:
        items = json.loads(text)
    except ValueError:
        raise PlanError(f"plan: stored {what} conditions are not a JSON list") from None
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise PlanError(f"plan: stored {what} conditions are not a JSON list of texts")
    return tuple(parse_condition(x, what) for x in items)


DAY_MS = 86_400_000


def fall_pct(peak_cc: int, equity_cc: int) -> float:
    """How far ``equity_cc`` is below ``peak_cc``, in % of the peak (0 at or above it)."""
    return 0.0 if peak_cc <= 0 else max(0.0, (peak_cc - equity_cc) * 100 / peak_cc)


def max_fall_pct(equities: Iterable[int]) -> float:
    """The largest fall below the running peak of a sequence of tick equities, in %."""
    peak, worst = 0, 0.0
    for eq in equities:
        if eq > peak:
            peak = eq
        else:
            worst = max(worst, fall_pct(peak, eq))
    return worst


def days_between(start_ts: int | None, now_ts: int | None) -> float | None:
    """Days from the plan's first tick to ``now_ts`` (None before its first tick)."""
    return None if start_ts is None or now_ts is None else max(0, now_ts - start_ts) / DAY_MS


def first_kill(plan: Plan, m: Metrics) -> Condition | None:
    """The first kill condition the measures meet (None: none)."""
    return next((c for c in plan.kill if c.met(m)), None)


def judge(plan: Plan, m: Metrics) -> tuple[str, str]:
    """(``passed`` | ``not passed``, the numbers) at the sample: every success condition met."""
    failed = [c for c in plan.success if not all(cl.holds(m.get(cl.measure)) for cl in c.clauses)]
    numbers = "; ".join(f"{c.text}: {c.numbers(m)}" for c in plan.success)
    return ("not passed" if failed else "passed"), numbers


def judge_at_sample(
    plan: Plan, trades: Sequence[PlanTrade], drawdown_pct: float | None, days: float | None
) -> tuple[str, str] | None:
    """The verdict at the sample, or None before it is reached: never a look before. On exactly
    the sample: the first N trades to settle (``settled_order``), or what settled in the N days."""
    if not plan.sample.reached(len(trades), days):
        return None
    ordered = settled_order(trades)
    if plan.sample.unit == "trades":
        ordered = ordered[: plan.sample.n]
    return judge(plan, measure(ordered, drawdown_pct, days, groups=wanted_groups(plan.success)))


def progress(plan: Plan, trades: int, days: float | None) -> str:
    """``52 of 200 settled trades`` / ``3.5 of 30 days``."""
    if plan.sample.unit == "trades":
        return f"{min(trades, plan.sample.n)} of {plan.sample.n} settled trades"
    return f"{min(days or 0.0, plan.sample.n):.1f} of {plan.sample.n} days"


def state_of(plan: Plan) -> str:
    """failed | passed | not passed | superseded | on track."""
    if plan.killed_ts is not None:
        return "failed"
    if plan.judged_ts is not None:
        return plan.verdict
    if plan.superseded_by is not None:
        return "superseded"
    return "on track"


def state_line(plan: Plan, trades: int, days: float | None) -> str:
    """One short line: ``plan 3: on track (52 of 200 settled trades)``, ``plan 3: FAILED (kill
    clv_hi95 < 0 after 50 trades: clv_hi95 -0.41c, trades 52)``, ``plan 3: PASSED at 200 trades``."""
    state = state_of(plan)
    if state == "failed":
        return f"plan {plan.id}: FAILED (kill {plan.killed_by}: {plan.killed_detail})"
    if state in ("passed", "not passed"):
        return f"plan {plan.id}: {state.upper()} at {plan.sample.text}"
    if state == "superseded":
        return f"plan {plan.id}: superseded by plan {plan.superseded_by} at {progress(plan, trades, days)}"
    return f"plan {plan.id}: on track ({progress(plan, trades, days)})"


def pause_reason(plan: Plan, cond: Condition, numbers: str) -> str:
    """The reason a tripped kill condition pauses trading with: ``plan 3 kill: drawdown > 8% (drawdown
    8.41%, trades 12)``."""
    return f"plan {plan.id} kill: {cond.text} ({numbers})"
