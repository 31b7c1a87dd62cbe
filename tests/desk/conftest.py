from __future__ import annotations

from decimal import Decimal
from weakref import WeakKeyDictionary

import pytest

from kakashi_tui.adapters.source import Estimator, FetchBatch, RawRow, Source
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import Estimate
from kakashi_tui.frontends.desk.app import KakashiApp
from kakashi_tui.trading.config import KakashiConfig
from kakashi_tui.trading.engine import Engine, TickReport
from kakashi_tui.trading.service import TradingService
from kakashi_tui.trading.view import EQUITY_KEPT, DeskWindows
from tests.conftest import SIM_START_MS, make_engine

FIXED_WALL = SIM_START_MS / 1000 + 3600  # exports are stamped with this "wall clock"


#: Each engine's desk windows, fed by ``tick``: the service ``desk_app`` makes takes them on, as if
#: it had run every tick (the engine keeps no view state: a tick's report feeds the service's).
_WINDOWS: WeakKeyDictionary[Engine, DeskWindows] = WeakKeyDictionary()


def windows(e: Engine) -> DeskWindows:
    w = _WINDOWS.get(e)
    if w is None:  # seeded from the store as the service's own are when it is made
        w = _WINDOWS[e] = DeskWindows(e.store.recent_equity(EQUITY_KEPT))
    return w


def tick(e: Engine) -> TickReport:
    """One tick of ``e`` by hand, its report fed to the desk's windows as the service's step does."""
    w = windows(e)  # (seeded before the tick, or it would count the tick twice)
    report = e.tick()
    w.feed(report)
    return report


def desk_engine(db_path, ticks: int = 40):
    e = make_engine(db_path)
    for _ in range(ticks):
        tick(e)
    e.last_latency_ms = 1.5  # measured latency varies run to run; pin it for pictures
    return e


def desk_app(engine, tmp_path, interval: float = 0.5, ticks: int | None = None, **kw) -> KakashiApp:
    """The desk over a service that owns ``engine`` (tests step it by hand unless autostart)."""
    kw.setdefault("autostart", False)
    kw.setdefault("reports_dir", tmp_path / "reports")
    service = TradingService(engine, interval=interval, max_ticks=ticks)
    service.windows = windows(engine)  # what the ticks by hand fed (``tick``)
    return KakashiApp(
        service,
        theme="textual-dark",
        cursor_blink=False,
        animations=False,
        clock=lambda: FIXED_WALL,
        **kw,
    )


@pytest.fixture
def engine(tmp_path):
    e = desk_engine(tmp_path / "desk.db")
    yield e
    e.store.close()


# Kalshi's long tickers, as the desk must show them whole.
KALSHI_MARKETS = [
    ("KXFEDDECISION-26DEC-H25", "Fed hikes 25bps", "0.08", "0.10", "0.15"),
    ("KXFEDDECISION-26DEC-C25", "Fed cuts 25bps", "0.55", "0.57", "0.64"),
    ("KXFEDDECISION-26DEC-H0", "Fed holds", "0.33", "0.36", "0.30"),
    ("KXHIGHNY-26NOV27-T45", "NYC high above 45°F on Nov 27", "0.41", "0.44", "0.52"),
    ("KXHIGHNY-26NOV27-T50", "NYC high above 50°F on Nov 27", "0.20", "0.23", "0.21"),
    ("KXHIGHNY-26NOV27-B47.5", "NYC high 47-48°F on Nov 27", "0.11", "0.14", "0.12"),
    ("KXNBAGAME-26NOV27LALBOS-LAL", "Lakers win at Boston", "0.38", "0.40", "0.37"),
    ("KXCPI-26DEC-T0.3", "CPI above 0.3% in December", "0.30", "0.40", "0.50"),  # an edge, a spread too wide
]


class KalshiShaped(Source):
    """A deterministic Kalshi-shaped feed: long tickers, real-looking titles, one bad row a tick,
    a minute a tick. ``down`` makes fetches fail, as a dead server would."""

    name = "kalshi"

    def __init__(self, start_ms: int = SIM_START_MS) -> None:
        self.t = start_ms
        self.n = 0
        self.down = False

    def now_ms(self) -> int:
        return self.t

    def fetch(self) -> FetchBatch:
        self.t += 60_000
        self.n += 1
        if self.down:
            return FetchBatch(errors=["GET /markets: connection refused (127.0.0.1:8931); gave up after 5 attempts"])
        rows = []
        for i, (t, title, bid, ask, _p) in enumerate(KALSHI_MARKETS):
            wiggle = Decimal((self.n + i) % 3 - 1) / 100
            market = {
                "ticker": t,
                "title": title,
                "series": t.split("-")[0],
                "event_ticker": t.rsplit("-", 1)[0],
                "status": "open",
                "open_ts": SIM_START_MS - 86_400_000,
                "close_ts": SIM_START_MS + (2 + i) * 86_400_000,
                "result": None,
            }
            b, a = Decimal(bid) + wiggle, Decimal(ask) + wiggle
            snap = {
                "ticker": t,
                "ts": self.t,
                "yes_bid": b,
                "yes_ask": a,
                "last": b,
                "volume": 1000 * (i + 1),
                "yes_bids": [{"price": b, "qty": 50}],
                "no_bids": [{"price": 1 - a, "qty": 40}],
            }
            rows.append(RawRow(market=market, snapshot=snap, payload={"ticker": t, "yes_bid_dollars": str(b)}))
        bad = {"ticker": "KXHIGHNY-26NOV27-T55", "yes_bid_dollars": "1.7000"}
        rows.append(
            RawRow(
                market={"ticker": "KXHIGHNY-26NOV27-T55"},
                snapshot=None,
                payload=bad,
                reason="yes_bid_dollars 1.7000 is outside [0, 1]",
            )
        )
        return FetchBatch(rows=rows, latency_ms=12.0)


class Beliefs(Estimator):
    source = "beliefs-file"

    def estimates(self, tickers, now_ms):
        p = {t: Decimal(ph) for t, _ti, _b, _a, ph in KALSHI_MARKETS}
        return [Estimate(ticker=t, p_hat=p[t], source=self.source, ts=now_ms) for t in tickers if t in p]


def kalshi_engine(db_path, ticks: int = 12) -> Engine:
    e = Engine(Store(db_path), KalshiShaped(), [Beliefs()], KakashiConfig().engine_config())
    for _ in range(ticks):
        tick(e)
    e.last_latency_ms = 12.0
    return e
