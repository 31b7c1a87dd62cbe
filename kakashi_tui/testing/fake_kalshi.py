"""A Kalshi-compatible HTTP server on 127.0.0.1, for tests and demos.

Serves ``GET /trade-api/v2/markets`` (cursor pages), ``/markets/{ticker}`` and
``/markets/{ticker}/orderbook`` in Kalshi's response shapes (cent integers and
``_dollars`` strings), and injects faults on request:

    429 (with or without Retry-After), 500/502/503, a response slower than the client's
    timeout, a dropped connection, malformed JSON, rows that break the schema, a repeated
    cursor, an empty book.

Run by hand:  python -m kakashi_tui.testing.fake_kalshi --port 8765 [--markets 12]
then:         kakashi --source kalshi --api-base http://127.0.0.1:8765/trade-api/v2
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

PREFIX = "/trade-api/v2"

#: Fault names accepted by ``FakeKalshi.fail_next``.
FAULTS = ("429", "429-retry-after", "500", "502", "503", "slow", "drop", "malformed-json")

#: Row corruptions accepted by ``FakeKalshi.bad_rows``.
BAD_ROWS = ("ask-below-bid", "price-over-1", "missing-ticker", "settled-no-result")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _d(cents: int) -> str:
    return f"{cents / 100:.4f}"


#: GET /markets ``status`` filter values -> the market statuses they list.
_STATUS_FILTER = {"unopened": ("initialized",), "open": ("active",), "closed": ("closed",),
                  "settled": ("determined", "settled", "finalized")}


@dataclass
class FakeMarket:
    ticker: str
    bid: int
    ask: int
    status: str = "active"
    result: str = ""
    depth: int = 4

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "ticker": self.ticker, "event_ticker": self.ticker.rsplit("-", 1)[0], "market_type": "binary",
            "title": f"Fake market {self.ticker}", "status": self.status,
            "open_time": _iso(now - timedelta(hours=1)), "close_time": _iso(now + timedelta(hours=6)),
            "yes_bid": self.bid, "yes_ask": self.ask, "no_bid": 100 - self.ask, "no_ask": 100 - self.bid,
            "yes_bid_dollars": _d(self.bid), "yes_ask_dollars": _d(self.ask),
            "no_bid_dollars": _d(100 - self.ask), "no_ask_dollars": _d(100 - self.bid),
            "last_price": (self.bid + self.ask) // 2, "last_price_dollars": _d((self.bid + self.ask) // 2),
            "volume": 1000, "open_interest": 500, "response_price_units": "usd_cent", "notional_value": 100,
            "result": self.result, "tick_size": 1,
        }

    def orderbook(self) -> dict[str, Any]:
        yes = [[self.bid - i, 10 + i] for i in range(self.depth) if self.bid - i >= 1][::-1]
        no = [[100 - self.ask - i, 12 + i] for i in range(self.depth) if 100 - self.ask - i >= 1][::-1]
        return {"orderbook": {"yes": yes, "no": no,
                              "yes_dollars": [[_d(p), str(q)] for p, q in yes],
                              "no_dollars": [[_d(p), str(q)] for p, q in no]}}


@dataclass
class FakeKalshi:
    """The server's state. Tests change it between requests; handlers read it under a lock."""

    markets: list[FakeMarket] = field(default_factory=list)
    page_size: int = 5
    slow_seconds: float = 3.0
    repeat_cursor: bool = False
    empty_books: bool = False
    bad_rows: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _faults: deque = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def with_markets(cls, n: int = 12, seed: int = 1) -> "FakeKalshi":
        r = random.Random(seed)
        ms = []
        for i in range(n):
            bid = r.randint(10, 85)
            ms.append(FakeMarket(ticker=f"KXFAKE-26JAN05-T{i:02d}", bid=bid, ask=bid + r.randint(1, 4)))
        return cls(markets=ms)

    def fail_next(self, *faults: str) -> None:
        """Queue faults: each answers one request, in order."""
        for f in faults:
            if f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; one of {FAULTS}")
        with self.lock:
            self._faults.extend(faults)

    def take_fault(self) -> str | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    def market_rows(self, now: datetime, status: str | None = None) -> list[dict[str, Any]]:
        """Markets as GET /markets lists them; ``status`` filters as Kalshi's query does. The
        injected bad rows are copies of the first listed market, listed after it."""
        wanted = _STATUS_FILTER.get(status or "")
        rows = [m.to_json(now) for m in self.markets if wanted is None or m.status in wanted]
        if not rows:
            return rows
        if "ask-below-bid" in self.bad_rows:
            rows.append({**rows[0], "ticker": "KXBAD-ASKBID", "yes_bid": 60, "yes_ask": 40,
                         "yes_bid_dollars": "0.6000", "yes_ask_dollars": "0.4000"})
        if "price-over-1" in self.bad_rows:
            rows.append({**rows[0], "ticker": "KXBAD-PRICE", "yes_ask_dollars": "1.2000", "yes_ask": 120})
        if "missing-ticker" in self.bad_rows:
            rows.append({k: v for k, v in rows[0].items() if k != "ticker"})
        if "settled-no-result" in self.bad_rows:
            rows.append({**rows[0], "ticker": "KXBAD-SETTLED", "status": "settled", "result": ""})
        return rows


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeKalshi/1.0"
    state: FakeKalshi  # set per server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self) -> None:
        self.state.requests.append((self.command, self.path))
        self._json(405, {"error": {"code": "method_not_allowed", "message": "fake server is read-only"}})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def do_GET(self) -> None:  # noqa: N802
        st = self.state
        st.requests.append(("GET", self.path))
        fault = st.take_fault()
        if fault == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if fault == "slow":
            time.sleep(st.slow_seconds)
        elif fault == "429":
            return self._json(429, {"error": {"code": "too_many_requests", "message": "slow down"}})
        elif fault == "429-retry-after":
            return self._json(429, {"error": {"code": "too_many_requests", "message": "slow down"}},
                              {"Retry-After": "1"})
        elif fault in ("500", "502", "503"):
            return self._json(int(fault), {"error": {"code": "internal", "message": f"fault {fault}"}})
        elif fault == "malformed-json":
            return self._json(200, b'{"markets": [{"ticker": "X", ')
        url = urlparse(self.path)
        path = url.path[len(PREFIX):] if url.path.startswith(PREFIX) else None
        q = parse_qs(url.query)
        now = datetime.now(timezone.utc)
        if path == "/markets":
            rows = st.market_rows(now, q.get("status", [""])[0])
            tickers = q.get("tickers", [""])[0]
            if tickers:
                rows = [r for r in rows if r.get("ticker") in tickers.split(",")]
            start = int(q.get("cursor", ["0"])[0] or 0)
            limit = min(int(q.get("limit", [str(st.page_size)])[0]), st.page_size)
            page = rows[start:start + limit]
            nxt = "" if start + limit >= len(rows) else str(start + limit)
            if st.repeat_cursor and nxt:
                nxt = str(limit)  # the second page forever
            return self._json(200, {"markets": page, "cursor": nxt})
        if path and path.startswith("/markets/"):
            parts = path.split("/")
            ticker = parts[2]
            m = next((m for m in st.markets if m.ticker == ticker), None)
            if m is None:
                return self._json(404, {"error": {"code": "not_found", "message": "market not found"}})
            if len(parts) == 4 and parts[3] == "orderbook":
                if st.empty_books:
                    return self._json(200, {"orderbook": {"yes": None, "no": None}})
                return self._json(200, m.orderbook())
            if len(parts) == 3:
                return self._json(200, {"market": m.to_json(now)})
        return self._json(404, {"error": {"code": "not_found", "message": "no such endpoint"}})


class FakeKalshiServer:
    """Start with ``with FakeKalshiServer(state) as srv: srv.base_url``."""

    def __init__(self, state: FakeKalshi | None = None, port: int = 0) -> None:
        self.state = state or FakeKalshi.with_markets()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    def start(self) -> "FakeKalshiServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "FakeKalshiServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description="A Kalshi-compatible server on 127.0.0.1 for demos")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--markets", type=int, default=12)
    args = ap.parse_args()
    srv = FakeKalshiServer(FakeKalshi.with_markets(args.markets), port=args.port).start()
    print(f"fake Kalshi at {srv.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
