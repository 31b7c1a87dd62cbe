"""The performance summary (trading/performance.py): today, this week and since the start, from a real
ledger and real ticks in SQLite, worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.ledger import Kind, LedgerEntry
from kakashi_tui.core.models import Side
from kakashi_tui.trading.performance import PerformanceBook, period_starts


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


SUN, MON, WED = "2026-01-04", "2026-01-05", "2026-01-07"  # 2026-01-05 is a Monday


def entry(when: str, kind: Kind, cc: int, key: str, ticker: str = "", side: Side | None = None, n: str = "0"):
    return LedgerEntry(ms(when), kind, cc, key, ticker, side, Decimal(n))


def tick(store: Store, n: int, when: str, cash: int, equity: int) -> None:
    store.insert_tick(
        tick=n, ts=ms(when), wall_ms=ms(when), saved=0, rejected=0, decisions=0, fills=0, settled=0,
        errors=0, latency_ms=0.0, cash_cc=cash, equity_cc=equity,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "perf.db")
    yield s
    s.close()


def test_today_this_week_and_since_start_by_hand(store):
    """$1,000 deposited on Sunday; A bought Sunday (marked $3.80 against $4.10 paid with its fee), sold
    Tuesday for a $0.78 gain after fees; B and C bought Wednesday, C settled worthless, B marked $1.90
    against $2.05. Wednesday noon: equity $999.60."""
    Y, N = Side.YES, Side.NO
    with store.atomic():
        store.append_ledger(
            [
                entry(f"{SUN}T10:00", Kind.DEPOSIT, 10_000_000, "deposit:initial"),
                entry(f"{SUN}T11:00", Kind.BUY, -40_000, "fill:1:cost", "A", Y, "10"),
                entry(f"{SUN}T11:00", Kind.BUY_FEE, -1_000, "fill:1:fee", "A", Y),
                entry("2026-01-06T10:00", Kind.SELL, 50_000, "fill:2:proceeds", "A", Y, "-10"),
                entry("2026-01-06T10:00", Kind.SELL_FEE, -1_200, "fill:2:fee", "A", Y),
                entry(f"{WED}T09:00", Kind.BUY, -20_000, "fill:3:cost", "B", N, "5"),
                entry(f"{WED}T09:00", Kind.BUY_FEE, -500, "fill:3:fee", "B", N),
                entry(f"{WED}T09:30", Kind.BUY, -10_000, "fill:4:cost", "C", Y, "2"),
                entry(f"{WED}T09:30", Kind.BUY_FEE, -300, "fill:4:fee", "C", Y),
                entry(f"{WED}T11:00", Kind.SETTLE, 0, "settle:C:yes", "C", Y, "-2"),
            ]
        )
        tick(store, 1, f"{SUN}T12:00", 9_959_000, 9_997_000)  # A marked at $3.80
        tick(store, 2, "2026-01-06T11:00", 10_007_800, 10_007_800)  # nothing held
        tick(store, 3, f"{WED}T10:00", 9_977_300, 9_995_300)
    account = store.account()
    equity = 9_977_000 + 19_000  # B marked at $1.90
    perf = PerformanceBook(store).figures(account, equity, ms(f"{WED}T12:00"))
    today, week, start = perf.periods
    assert (today.name, today.start_ms) == ("Today", ms(f"{WED}T00:00"))
    assert (week.name, week.start_ms) == ("This week", ms(f"{MON}T00:00"))
    assert (start.name, start.start_ms) == ("Since start", None)
    # since the start: both closes, every fee; unrealised = B's mark less its cost (fee included)
    assert (start.realized_cc, start.unrealized_cc, start.fees_cc) == (7_800 - 10_300, 19_000 - 20_500, 3_000)
    assert start.total_cc == equity - 10_000_000 and (start.trades, start.wins, start.win_rate) == (2, 1, "1/2 (50%)")
    # the week: from Sunday's last tick (A at -$0.30 unrealised) to B at -$0.15; Sunday's fee is not the week's
    assert (week.realized_cc, week.unrealized_cc, week.fees_cc) == (-2_500, -1_500 - (-3_000), 2_000)
    assert week.total_cc == equity - 9_997_000
    # today: from Tuesday's last tick (nothing held): C's loss realised, B's unrealised
    assert (today.realized_cc, today.unrealized_cc, today.fees_cc) == (-10_300, -1_500, 800)
    assert (today.trades, today.wins, today.win_rate) == (1, 0, "0/1 (0%)")


def test_a_run_that_began_this_week_counts_its_deposit_as_no_gain(store):
    """No tick before the week began: nothing was held, so the start is the cash deposited by then
    (none), and the deposit made since is not PnL."""
    with store.atomic():
        store.append_ledger([entry(f"{MON}T09:00", Kind.DEPOSIT, 10_000_000, "deposit:initial")])
        tick(store, 1, f"{MON}T09:01", 10_000_000, 10_000_000)
    perf = PerformanceBook(store).figures(store.account(), 10_000_000, ms(f"{WED}T12:00"))
    for p in perf.periods:
        assert (p.realized_cc, p.unrealized_cc, p.fees_cc, p.trades, p.win_rate) == (0, 0, 0, 0, "—")


def test_the_book_sums_again_when_the_ledger_grows(store):
    with store.atomic():
        store.append_ledger([entry(f"{MON}T09:00", Kind.DEPOSIT, 10_000_000, "deposit:initial")])
    book = PerformanceBook(store)
    now = ms(f"{MON}T12:00")
    assert book.figures(store.account(), 10_000_000, now).periods[0].fees_cc == 0
    with store.atomic():
        store.append_ledger(
            [
                entry(f"{MON}T10:00", Kind.BUY, -40_000, "fill:1:cost", "A", Side.YES, "10"),
                entry(f"{MON}T10:00", Kind.BUY_FEE, -1_000, "fill:1:fee", "A", Side.YES),
            ]
        )
    today = book.figures(store.account(), 9_990_000, now).periods[0]
    assert (today.fees_cc, today.unrealized_cc, today.total_cc) == (1_000, -10_000, -10_000)


@pytest.mark.parametrize(
    "now, day, week",
    [
        ("2026-01-05T00:00", "2026-01-05T00:00", "2026-01-05T00:00"),  # Monday midnight: both begin
        ("2026-01-11T23:59", "2026-01-11T00:00", "2026-01-05T00:00"),  # Sunday night: still that week
        ("2026-01-12T00:00", "2026-01-12T00:00", "2026-01-12T00:00"),
        ("2024-02-29T13:00", "2024-02-29T00:00", "2024-02-26T00:00"),
    ],
)
def test_periods_are_utc_days_and_weeks_from_monday(now, day, week):
    assert period_starts(ms(now)) == (ms(day), ms(week))
