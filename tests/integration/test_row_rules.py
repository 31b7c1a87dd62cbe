"""The snapshot row's rules are declared once (core/rowrules.py) and drive all three checks:
pydantic's rule book (``QuoteRules``), the quick check (``quick_snapshot``) and the vectorised
check (``columnar.check_batch``).

For every declared rule there is a hostile row, built from the declared bound where the rule is
a bound; each form rejects it, with the declared reason (the quick check and the vectorised one
hand such rows to the rule book, which names it). The value at the bound is taken by all three.
A bound changed in the declaration alone changes all three forms (a fresh interpreter).
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.columnar import check_batch
from kakashi_tui.core import rowrules as R
from kakashi_tui.core.models import QuoteRules
from kakashi_tui.core.validate import model_input, quick_snapshot, validate_row

NOW = 1_767_571_200_000
MARKET = {"ticker": "T", "status": "open"}
SCHEMA = pa.schema([f for f in cat.SNAPSHOTS if f.name not in ("source", "recv_ts")])


def _row(**over: Any) -> dict[str, Any]:
    """A plainly valid row in catalog units (the vectorised check's input), changed by ``over``."""
    row: dict[str, Any] = {
        "ts": NOW,
        "ticker": "T",
        "yes_bid_cc": None,
        "yes_ask_cc": None,
        "last_cc": None,
        "volume_hundredths": 0,
        "yes_bids": [],
        "no_bids": [],
    }
    return {**row, **over}


def _sent(row: dict[str, Any]) -> dict[str, Any]:
    """The same row as a source sends it: exact Decimal strings for prices and counts."""

    def d(v: int | None, scale: int) -> str | None:
        return None if v is None else str(Decimal(v) / scale)

    def levels(ls: list[dict[str, int]]) -> list[list[str | None]]:
        return [[d(lv["price_cc"], R.PRICE.scale), d(lv["qty_hundredths"], R.COUNT.scale)] for lv in ls]

    return {
        "ticker": row["ticker"],
        "ts": row["ts"],
        "yes_bid": d(row["yes_bid_cc"], R.PRICE.scale),
        "yes_ask": d(row["yes_ask_cc"], R.PRICE.scale),
        "last": d(row["last_cc"], R.PRICE.scale),
        "volume": d(row["volume_hundredths"], R.COUNT.scale),
        "yes_bids": levels(row["yes_bids"]),
        "no_bids": levels(row["no_bids"]),
    }


def _level(price_u: int, qty_u: int) -> dict[str, int]:
    return {"price_cc": price_u, "qty_hundredths": qty_u}


def _with(b: R.Bound, u: int) -> dict[str, Any]:
    """A row whose value under bound ``b`` is ``u`` stored units (the rest plainly valid)."""
    if b is R.PRICE:
        return _row(yes_bid_cc=u)
    if b is R.COUNT:
        return _row(volume_hundredths=u)
    if b is R.LEVEL_PRICE:
        return _row(yes_bids=[_level(u, 100)])
    if b is R.LEVEL_QTY:
        return _row(yes_bids=[_level(4200, u)])
    assert b is R.TS
    return _row(ts=u)


BOUNDS = {b.name: b for b in (R.PRICE, R.COUNT, R.LEVEL_PRICE, R.LEVEL_QTY, R.TS)}


def _hostile(rule: R.Rule) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    """(the row as a source sends it, the same row in catalog units or None where those units
    cannot hold it, the reason the rule book gives) for ``rule``."""
    name, _, edge = rule.name.rpartition(" ")
    b = BOUNDS.get(name)
    if b is not None:
        if edge == "grid":  # half a stored unit past the smallest value: off the grid, in range
            v = Decimal(b.min_u) / b.scale + b.step / 2
            sent = _sent(_with(b, b.min_u))
            key = {"price": "yes_bid", "count": "volume", "timestamp": "ts"}.get(b.name)
            if key is not None:
                sent[key] = str(v)
            else:
                sent["yes_bids"][0][0 if b is R.LEVEL_PRICE else 1] = str(v)
            return sent, None, rule.reason.format(v=v)  # (a stored unit is the grid: none off it)
        u = b.min_u - 1 if edge == "low" else b.max_u + 1
        row = _with(b, u)
        return _sent(row), row, rule.reason.format(v=Decimal(u) / b.scale if b.scale > 1 else u)
    if rule.name == "ticker":
        row = _row(ticker=" ")
    elif rule.name == "future":
        row = _row(ts=NOW + R.FUTURE_SKEW_MS + 1)
        return _sent(row), row, rule.reason.format(v=NOW + R.FUTURE_SKEW_MS + 1, now=NOW)
    elif rule.name == "crossed":
        row = _row(yes_bid_cc=5000, yes_ask_cc=4000)
        sent = {**_sent(row), "yes_bid": "0.5000", "yes_ask": "0.4000"}  # (as the catalog's values read)
        return sent, row, rule.reason.format(ask=Decimal("0.4000"), bid=Decimal("0.5000"))
    elif rule.name == "depth bid":
        row = _row(yes_bid_cc=4200, yes_bids=[_level(4100, 100)])
    elif rule.name == "depth ask":
        row = _row(yes_ask_cc=4500, no_bids=[_level(5600, 100)])
    elif rule.name == "order":
        row = _row(yes_bids=[_level(4100, 100), _level(4200, 100)])
    else:
        raise AssertionError(f"declared rule {rule.name!r} has no hostile row here: add one")
    return _sent(row), row, rule.reason


@pytest.mark.parametrize("rule", R.RULES, ids=[r.name for r in R.RULES])
def test_every_declared_rule_is_held_by_all_three_forms_with_its_reason(rule):
    sent, row, why = _hostile(rule)
    want = f"snapshot {rule.field}: {why}"
    # the rule book
    v = validate_row(MARKET, sent, NOW)
    assert v.reason == want
    with pytest.raises(Exception):  # noqa: B017,PT011 - pydantic's own error, checked above by its text
        QuoteRules.model_validate(model_input(sent), context={"now_ms": NOW})
    # the quick check declines it (so the rule book names the reason)
    assert quick_snapshot(sent, NOW) is None
    # the vectorised check: not plain, rejected with the same reason
    if row is not None:
        checked = check_batch(pa.Table.from_pylist([row], schema=SCHEMA), NOW)
        assert not checked.plain[0] and not checked.valid[0]
        # (it checks a row with a plain market of the row's ticker: a missing one is the market's)
        assert checked.reasons[0] == (want.replace("snapshot", "market", 1) if rule.name == "ticker" else want)


@pytest.mark.parametrize("b", list(BOUNDS.values()), ids=list(BOUNDS))
def test_the_values_at_each_declared_bound_are_taken_by_all_three(b):
    for u in (b.min_u, b.max_u):
        row = _with(b, u)
        if b is R.LEVEL_PRICE:  # a level at the top of the range is the YES bid's (depth agrees)
            row["yes_bid_cc"] = u
        if b is R.PRICE and u == b.max_u:
            row["yes_bid_cc"], row["yes_ask_cc"] = None, u  # (an ask of 1: no ask)
        now = max(NOW, u)  # (the latest time is in the future of today's clock)
        v = validate_row(MARKET, _sent(row), now)
        assert v.reason is None, (b.name, u, v.reason)
        q = quick_snapshot(_sent(row), now)
        assert q is not None and q == v.snapshot
        checked = check_batch(pa.Table.from_pylist([row], schema=SCHEMA), now)
        assert checked.plain[0] and checked.quotes([0])[0] == v.snapshot


def test_the_declaration_lists_the_rule_books_fields():
    assert list(R.FIELDS) == list(QuoteRules.model_fields)


DRIVE = """
import dataclasses, json, sys
from decimal import Decimal
import pyarrow as pa
import kakashi_tui.core.rowrules as R

# the declaration alone changes: counts at most 5 contracts
why = "count {v} outside [0, 5]"
R.COUNT = dataclasses.replace(R.COUNT, hi=500, low_reason=why, high_reason=why)
R.LEVEL_QTY = dataclasses.replace(R.LEVEL_QTY, hi=500, high_reason="Input should be less than or equal to 5")

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.columnar import check_batch
from kakashi_tui.core.validate import quick_snapshot, validate_row

out = []
for vol, qty in ((500, 500), (501, 100), (100, 501)):
    sent = {"ticker": "T", "ts": 1, "volume": str(Decimal(vol) / 100),
            "yes_bid": "0.42", "yes_bids": [["0.42", str(Decimal(qty) / 100)]]}
    row = {"ts": 1, "ticker": "T", "yes_bid_cc": 4200, "yes_ask_cc": None, "last_cc": None, "volume_hundredths": vol,
           "yes_bids": [{"price_cc": 4200, "qty_hundredths": qty}], "no_bids": []}
    schema = pa.schema([f for f in cat.SNAPSHOTS if f.name not in ("source", "recv_ts")])
    checked = check_batch(pa.Table.from_pylist([row], schema=schema), 10**13)
    out.append([validate_row({"ticker": "T", "status": "open"}, sent, 10**13).reason,
                quick_snapshot(sent, None) is not None, bool(checked.plain[0]), checked.reasons.get(0)])
print(json.dumps(out))
"""


def test_a_bound_changed_in_the_declaration_alone_changes_all_three_forms():
    import json
    import os
    from pathlib import Path

    import kakashi_tui

    env = {**os.environ, "PYTHONPATH": str(Path(kakashi_tui.__file__).parent.parent)}  # (this checkout's code)
    done = subprocess.run(
        [sys.executable, "-c", DRIVE], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    at_bound, volume_over, level_over = json.loads(done.stdout)
    assert at_bound == [None, True, True, None]
    why = "snapshot volume: count 5.01 outside [0, 5]"
    assert volume_over == [why, False, False, why]
    assert level_over == [
        "snapshot yes_bids.0.qty: Input should be less than or equal to 5",
        False,
        False,
        level_over[0],
    ]


def test_the_books_stored_text_has_one_builder():
    # the quick check, the catalog replay and Quote all build it from models' parts
    from pathlib import Path

    import kakashi_tui

    root = Path(kakashi_tui.__file__).parent
    builders = sorted(
        str(p.relative_to(root)) for p in root.rglob("*.py") if '{{"yes":[' in p.read_text(encoding="utf-8")
    )
    assert builders == ["core/models.py"]
    sent = {
        "ticker": "T",
        "ts": NOW,
        "yes_bid": "0.4230",
        "yes_bids": [["0.4230", 13], ["0.4000", "2.50"], ["0.3900", 1500]],
        "no_bids": [["0.5500", "0.01"]],
    }
    q = quick_snapshot(sent, NOW)
    assert q is not None
    want = '{"yes":[["0.4230","13.00"],["0.4000","2.50"],["0.3900","1500.00"]],"no":[["0.5500","0.01"]]}'
    assert q.book_text == want
    row = _row(
        yes_bid_cc=4230,
        yes_bids=[_level(4230, 1300), _level(4000, 250), _level(3900, 150_000)],
        no_bids=[_level(5500, 1)],
    )
    checked = check_batch(pa.Table.from_pylist([row], schema=SCHEMA), NOW)
    cq = checked.quotes([0])[0]
    assert cq is not None and cq.book_text == want
