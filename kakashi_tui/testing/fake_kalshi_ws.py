"""A loopback WebSocket server speaking Kalshi's market-data messages, with faults on demand.

``orderbook_delta`` (an ``orderbook_snapshot`` per market, then ``orderbook_delta`` messages
with a per-subscription ``seq``) and ``trade`` prints, in fixed-point strings. Faults:
``gap()`` skips a sequence number, ``error(25)`` says the subscription's buffer overflowed
(``channel="trade"``: the trade subscription's; ``trade_gap()`` skips a trade frame's ``seq``),
``send_lifecycle(type, msg)`` sends a ``market_lifecycle_v2`` channel frame (an
``event_fee_update`` too), ``heartbeat(n)`` pings as Kalshi does and returns the pongs, ``refuse_get_snapshot`` answers
``update_subscription`` (``get_snapshot``, which re-sends the named books' snapshots on their
subscription) with an error, ``malformed()`` sends a frame that is not JSON or a delta
that cannot be applied, ``send_trade(**fields)`` sends a trade print of the caller's making (hostile
fields included) to the next trade subscriber, ``disconnect()`` drops every connection, ``refuse`` answers the
handshake with HTTP 503, ``require_key`` refuses a handshake without ``KALSHI-ACCESS-KEY``.
Book frames carry the exchange's time as 3.34 does (``sending_ts_ms`` on the frame, ``ts_ms`` and
``ts`` on a delta); ``lag_ms`` stamps them that far in the past (a feed arriving late).
The server's own books are the truth a client's rebuilt books are compared with.

Frames follow Kalshi's spec 3.34 (``spec="3.34"``, the default): every frame carries
``sending_ts_ms``, deltas ``ts_ms``, trade prints ``taker_outcome_side`` / ``taker_book_side`` /
``is_block_trade`` / ``ts_ms`` beside the deprecated ``taker_side`` / ``ts``; ``spec="3.20"``
sends the frames of early June 2026 (none of those).

    python -m kakashi_tui.testing.fake_kalshi_ws --port 8766 [--tickers A,B] [--require-key] [--refuse]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

PATH = "/trade-api/ws/v2"


def _p(cc: int) -> str:
    return f"{cc / 10_000:.4f}"


def _q(hundredths: int) -> str:
    return f"{hundredths / 100:.2f}"


@dataclass
class _Conn:
    ws: Any
    book_sids: dict[int, set[str]] = field(default_factory=dict)
    trade_sids: set[int] = field(default_factory=set)
    lifecycle_sids: set[int] = field(default_factory=set)
    seq: dict[int, int] = field(default_factory=dict)


class FakeKalshiWS:
    def __init__(
        self, tickers: tuple[str, ...] = ("KXA-1", "KXB-2"), seed: int = 1, interval: float = 0.01, spec: str = "3.34"
    ) -> None:
        self.spec = spec  # "3.34" or "3.20" (fake_kalshi.SPECS)
        self.rng = random.Random(seed)
        self.interval = interval
        self.books: dict[str, dict[str, dict[int, int]]] = {}
        for i, t in enumerate(tickers):
            mid = 3000 + 1000 * (i % 6)  # $0.30-$0.80 however many markets (50 once made $5.20 bids)
            self.books[t] = {
                "yes": {mid - 100 * k: 1000 + 100 * k for k in range(3)},
                "no": {10_000 - mid - 200 - 100 * k: 500 + 100 * k for k in range(3)},
            }
        self.refuse = False
        self.require_key = False
        self.lag_ms = 0  # book frames are stamped this long before they are sent (a late feed)
        self.paused = False  # no deltas while set: the books hold still for a comparison
        self.connections = 0
        self.subscribes: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []  # every command received, in order
        self.refuse_get_snapshot = False  # answer update_subscription with an error (an older server)
        self.unsubscribes = 0
        self.deltas_sent = 0
        self._conns: list[_Conn] = []
        self._next_sid = 1
        self._gap = 0
        self._malformed: list[str] = []
        self._errors: list[tuple[int, str]] = []
        self._trade_errors: list[tuple[int, str]] = []  # error(channel="trade")
        self._trade_skip = 0
        self._trades_out: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (print, frame fields): send_trade
        self._lifecycle_out: list[tuple[str, Any]] = []  # (type, msg) for market_lifecycle_v2 subscribers
        self._disconnect = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self.port = 0

    # -- faults (any thread) ---------------------------------------------------------------
    def gap(self, n: int = 1) -> None:
        with self._lock:
            self._gap += n

    def malformed(self, kind: str = "json") -> None:
        """``json``: a frame that is not JSON; ``deep``: one of 100,000 nested brackets (Python's
        json runs out of recursion on it); ``delta``: a delta with a price that is no price;
        ``delta-huge``: a delta of a 30-digit count (in sequence: a client that applied it would
        hold a book no catalog column can)."""
        with self._lock:
            self._malformed.append(kind)

    def error(
        self, code: int = 25, msg: str = "subscription buffer overflow", channel: str = "orderbook_delta"
    ) -> None:
        """An ``error`` frame naming each subscription of ``channel`` (``orderbook_delta`` or
        ``trade``; code 25: the reader fell behind). The sequence goes on unbroken, so only the
        error itself can tell a client its books are stale, or that prints were lost."""
        with self._lock:
            (self._trade_errors if channel == "trade" else self._errors).append((code, msg))

    def trade_gap(self, n: int = 1) -> None:
        """The next trade frame skips ``n`` sequence numbers (prints the client never saw)."""
        with self._lock:
            self._trade_skip += n

    def heartbeat(self, times: int = 1, timeout: float = 5.0) -> list[bytes]:
        """Kalshi's heartbeat: a ping frame with body ``heartbeat`` to every connection, ``times``
        times in a row (each after the last one's pong). The pongs' bodies, as answered (a ping
        without its pong within ``timeout``: none for it)."""
        if self._loop is None:
            raise RuntimeError("fake Kalshi WebSocket server is not running")
        return asyncio.run_coroutine_threadsafe(self._heartbeat(times, timeout), self._loop).result(timeout * times + 5)

    async def _heartbeat(self, times: int, timeout: float) -> list[bytes]:
        pongs: list[bytes] = []
        for _ in range(times):
            with self._lock:
                conns = list(self._conns)
            for c in conns:
                try:
                    waiter = await c.ws.ping(b"heartbeat")
                    await asyncio.wait_for(waiter, timeout)  # websockets: done when a pong with that body comes
                except Exception:  # noqa: BLE001 - no pong: the caller sees one fewer
                    continue
                pongs.append(b"heartbeat")
        return pongs

    def send_lifecycle(self, kind: str, msg: Any) -> None:
        """A ``market_lifecycle_v2`` channel frame of type ``kind`` (``market_lifecycle_v2``,
        ``event_fee_update``) with body ``msg``, sent as soon as a client has subscribed to it."""
        with self._lock:
            self._lifecycle_out.append((kind, msg))

    def send_trade(self, frame: dict[str, Any] | None = None, **fields: Any) -> None:
        """A trade print with ``fields`` over the usual ones, sent as soon as a client has
        subscribed to trades (kept until then); ``frame``: fields of the frame around it (say,
        3.34's ``sending_ts_ms``)."""
        t = next(iter(sorted(self.books)))
        body = {
            "trade_id": f"sent-{len(self._trades_out)}",
            "market_ticker": t,
            "yes_price_dollars": "0.4200",
            "no_price_dollars": "0.5800",
            "count_fp": "3.00",
            "taker_side": "yes",
            "ts": 1_795_651_200,
            **fields,
        }
        with self._lock:
            self._trades_out.append((self._trade_334(body, fields), frame or {}))

    def _trade_334(self, body: dict[str, Any], given: Any = ()) -> dict[str, Any]:
        """A print with spec 3.34's fields, agreeing with its ``taker_side`` and ``ts`` (hostile
        ones stay hostile), unless ``given`` names them (3.20: the print as it is)."""
        if self.spec == "3.20":
            return body
        side, ts = body.get("taker_side"), body.get("ts")
        new: dict[str, Any] = {
            "taker_outcome_side": side,
            "taker_book_side": {"yes": "bid", "no": "ask"}.get(side, side) if isinstance(side, str) else side,
            "is_block_trade": False,
        }
        if isinstance(ts, int) and not isinstance(ts, bool):
            new["ts_ms"] = ts * 1000
        return {**body, **{k: v for k, v in new.items() if k not in given}}

    def _frame(self, body: dict[str, Any]) -> str:
        """A frame as sent: since October 2026 (3.34) each carries ``sending_ts_ms``."""
        if self.spec != "3.20":
            body = {"sending_ts_ms": self._stamp(), **body}  # (a field given wins)
        return json.dumps(body)

    def _stamp(self) -> int:
        """The exchange's time on a frame sent now: ``lag_ms`` ago (UTC epoch ms)."""
        return int(time.time() * 1000) - self.lag_ms

    def disconnect(self) -> None:
        with self._lock:
            self._disconnect = True

    def book(self, ticker: str) -> dict[str, dict[int, int]]:
        with self._lock:
            return {s: dict(v) for s, v in self.books[ticker].items()}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, port: int = 0) -> int:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(port)), daemon=True, name="fake-kalshi-ws"
        )
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fake Kalshi WebSocket server did not start")
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{PATH}"

    async def _main(self, port: int) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", port, process_request=self._check) as server:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[index]
            self._started.set()
            ticker = asyncio.ensure_future(self._ticker())
            await self._stop.wait()
            ticker.cancel()

    def _check(self, connection: Any, request: Any) -> Any:
        if self.refuse:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "REST only here\n")
        if request.path != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if self.require_key and not request.headers.get("KALSHI-ACCESS-KEY"):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "authentication required\n")
        return None

    async def _handler(self, ws: Any) -> None:
        conn = _Conn(ws)
        with self._lock:
            self.connections += 1
            self._conns.append(conn)
        try:
            async for frame in ws:
                try:
                    cmd = json.loads(frame)
                except json.JSONDecodeError:
                    await ws.send(
                        self._frame({"type": "error", "msg": {"code": 1, "msg": "Unable to process message"}})
                    )
                    continue
                await self._command(conn, cmd)
        except Exception:  # noqa: BLE001 - a client that vanished
            pass
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)

    async def _command(self, conn: _Conn, cmd: dict[str, Any]) -> None:
        cid = cmd.get("id")
        params = cmd.get("params") or {}
        with self._lock:
            self.commands.append(cmd)
        if cmd.get("cmd") == "update_subscription":
            sids = params.get("sids") or []
            if self.refuse_get_snapshot or params.get("action") != "get_snapshot":
                await conn.ws.send(
                    self._frame({"id": cid, "type": "error", "msg": {"code": 13, "msg": "Unsupported action"}})
                )
            elif len(sids) != 1 or sids[0] not in conn.book_sids:
                await conn.ws.send(
                    self._frame(
                        {
                            "id": cid,
                            "type": "error",
                            "msg": {"code": 12, "msg": "Exactly one subscription ID is required"},
                        }
                    )
                )
            else:
                sid = sids[0]
                for t in params.get("market_tickers") or sorted(conn.book_sids[sid]):
                    if t in conn.book_sids[sid]:
                        await self._send_seq(conn, sid, "orderbook_snapshot", self._snapshot(t))
        elif cmd.get("cmd") == "subscribe":
            with self._lock:
                self.subscribes.append(params)
            for channel in params.get("channels") or []:
                sid = self._next_sid
                self._next_sid += 1
                await conn.ws.send(
                    self._frame({"id": cid, "type": "subscribed", "msg": {"channel": channel, "sid": sid}})
                )
                if channel == "orderbook_delta":
                    tickers = [t for t in params.get("market_tickers") or [] if t in self.books]
                    conn.book_sids[sid] = set(tickers)
                    conn.seq[sid] = 1
                    for t in tickers:
                        await self._send_seq(conn, sid, "orderbook_snapshot", self._snapshot(t))
                elif channel == "trade":
                    conn.trade_sids.add(sid)
                    conn.seq[sid] = 1
                elif channel == "market_lifecycle_v2":
                    conn.lifecycle_sids.add(sid)
        elif cmd.get("cmd") == "unsubscribe":
            with self._lock:
                self.unsubscribes += 1
            for sid in params.get("sids") or []:
                conn.book_sids.pop(sid, None)
                conn.trade_sids.discard(sid)
                await conn.ws.send(
                    self._frame({"id": cid, "sid": sid, "seq": conn.seq.get(sid, 1), "type": "unsubscribed"})
                )

    def _snapshot(self, t: str) -> dict[str, Any]:
        with self._lock:
            b = self.books[t]
            return {
                "market_ticker": t,
                "market_id": f"id-{t}",
                "yes_dollars_fp": [[_p(p), _q(q)] for p, q in sorted(b["yes"].items())],
                "no_dollars_fp": [[_p(p), _q(q)] for p, q in sorted(b["no"].items())],
            }

    async def _send_seq(self, conn: _Conn, sid: int, kind: str, body: dict[str, Any]) -> None:
        with self._lock:
            skip, self._gap = self._gap, 0
        conn.seq[sid] += skip  # a gap: the client never sees these numbers
        seq = conn.seq[sid]
        conn.seq[sid] += 1
        await conn.ws.send(self._frame({"type": kind, "sid": sid, "seq": seq, "msg": body}))

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.paused:
                continue
            with self._lock:
                drop, self._disconnect = self._disconnect, False
                bad = self._malformed[:1]
                del self._malformed[:1]
                errors, self._errors = self._errors, []
                conns = list(self._conns)
                trade_errors: list[tuple[int, str]] = []
                if any(c.trade_sids for c in conns):
                    trade_errors, self._trade_errors = self._trade_errors, []
                sent: list[tuple[dict[str, Any], dict[str, Any]]] = []
                if not drop and any(c.trade_sids for c in conns):
                    sent, self._trades_out = self._trades_out, []
                lifecycle: list[tuple[str, Any]] = []
                if not drop and any(c.lifecycle_sids for c in conns):
                    lifecycle, self._lifecycle_out = self._lifecycle_out, []
            if drop:
                for c in conns:
                    await c.ws.close()
                continue
            t, side, p, d = self._move()
            stamp = self._stamp()
            delta: dict[str, Any] = {
                "market_ticker": t,
                "market_id": f"id-{t}",
                "price_dollars": _p(p),
                "delta_fp": _q(d),
                "side": side,
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp // 1000)),
            }
            if self.spec != "3.20":  # 3.34: the exchange's time in ms (the RFC 3339 ts is deprecated)
                delta["ts_ms"] = stamp
            for c in conns:
                try:
                    for sid in list(c.book_sids) if errors else ():
                        for code, text in errors:
                            err = {"type": "error", "sid": sid, "msg": {"code": code, "msg": text}}
                            await c.ws.send(self._frame(err))
                    for sid, tickers in list(c.book_sids.items()):
                        if bad and bad[0] == "json":
                            await c.ws.send('{"type": "orderbook_delta", "sid": ')
                        elif bad and bad[0] == "deep":
                            await c.ws.send('{"type": "orderbook_delta", "sid": ' + "[" * 100_000)
                        elif bad and bad[0] == "delta":
                            await self._send_seq(c, sid, "orderbook_delta", {**delta, "price_dollars": "lots"})
                        elif bad and bad[0] == "delta-huge":
                            await self._send_seq(c, sid, "orderbook_delta", {**delta, "delta_fp": "9" * 30 + ".00"})
                        elif t in tickers:
                            await self._send_seq(c, sid, "orderbook_delta", delta)
                            self.deltas_sent += 1
                    for sid in c.lifecycle_sids:
                        for kind, body in lifecycle:
                            await c.ws.send(self._frame({"type": kind, "sid": sid, "msg": body}))
                    for sid in c.trade_sids:
                        for code, text in trade_errors:
                            await c.ws.send(
                                self._frame({"type": "error", "sid": sid, "msg": {"code": code, "msg": text}})
                            )
                        for body, around in sent:
                            await c.ws.send(
                                self._frame(
                                    {"type": "trade", "sid": sid, "seq": self._trade_seq(c, sid), "msg": body, **around}
                                )
                            )
                        if self.rng.random() < 0.2:
                            await c.ws.send(
                                self._frame(
                                    {
                                        "type": "trade",
                                        "sid": sid,
                                        "seq": self._trade_seq(c, sid),
                                        "msg": self._trade_334(
                                            {
                                                "trade_id": f"tr{self.rng.randrange(10**9)}",
                                                "market_ticker": t,
                                                "yes_price_dollars": _p(max(100, min(9900, p))),
                                                "no_price_dollars": _p(10_000 - p),
                                                "count_fp": "3.00",
                                                "taker_side": side,
                                                "ts": 1_795_651_200,
                                            }
                                        ),
                                    }
                                )
                            )
                except Exception:  # noqa: BLE001 - a connection closing under us
                    pass

    def _trade_seq(self, conn: _Conn, sid: int) -> int:
        """The next ``seq`` of a trade subscription (after any ``trade_gap``)."""
        with self._lock:
            skip, self._trade_skip = self._trade_skip, 0
        conn.seq[sid] = conn.seq.get(sid, 1) + skip
        seq = conn.seq[sid]
        conn.seq[sid] += 1
        return seq

    def _move(self) -> tuple[str, str, int, int]:
        """One change to the true books: a level grows or shrinks (never below zero); a new level
        never crosses the other side (a YES bid plus a NO bid stays under $1, as on Kalshi)."""
        r = self.rng
        with self._lock:
            t = r.choice(sorted(self.books))
            side = r.choice(("yes", "no"))
            levels = self.books[t][side]
            other = self.books[t]["no" if side == "yes" else "yes"]
            hi = min(4000, 10_000 - max(other, default=0))  # a new bid stays below the other side's ask
            if levels and (r.random() < 0.8 or hi <= 100):
                p = r.choice(sorted(levels))
            else:
                p = r.randrange(100, max(hi, 101), 100)
            have = levels.get(p, 0)
            d = r.choice((-1, 1)) * r.randrange(100, 600, 100)
            if have + d < 0:
                d = -have
            if d == 0:
                d = 100
            q = have + d
            if q:
                levels[p] = q
            else:
                levels.pop(p, None)
        return t, side, p, d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument(
        "--tickers",
        default="KXA-1,KXB-2",
        help="comma-separated markets whose books it serves (e.g. fake_kalshi's KXFAKE-26JAN05-T00,KXFAKE-26JAN05-T01)",
    )
    ap.add_argument("--require-key", action="store_true", help="refuse a handshake without KALSHI-ACCESS-KEY")
    ap.add_argument("--refuse", action="store_true", help="answer every handshake with HTTP 503 (REST only)")
    ap.add_argument("--spec", choices=("3.34", "3.20"), default="3.34", help="send the frames of this Kalshi spec")
    a = ap.parse_args()
    server = FakeKalshiWS(tuple(t for t in a.tickers.split(",") if t), interval=a.interval, spec=a.spec)
    server.require_key, server.refuse = a.require_key, a.refuse
    server.start(a.port)
    print(f"fake Kalshi WebSocket on {server.url} (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
