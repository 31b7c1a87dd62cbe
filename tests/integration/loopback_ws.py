"""Kalshi on loopback with a key: a signed REST server and a WebSocket server that requires the
key's headers, with the environment set so Kakashi signs (for tests that build through runtime)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS


def wait_for(cond: Callable[[], Any], timeout: float = 15.0, step: Callable[[], Any] | None = None) -> bool:
    """Poll ``cond`` (calling ``step`` first each time) until it holds or ``timeout`` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if step is not None:
            step()
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


@contextmanager
def signed_loopback(
    tmp_path, monkeypatch, tickers: tuple[str, ...], interval: float = 0.01, **catalog: Any
) -> Iterator[tuple[FakeKalshiWS, Any]]:
    """(the WebSocket server, a KakashiConfig pointing at both servers)."""
    from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, make_test_key
    from kakashi_tui.trading.config import CatalogSection, KakashiConfig, KalshiSection

    key_path, pub = make_test_key(tmp_path)
    ws = FakeKalshiWS(tickers, interval=interval)
    ws.require_key = True
    ws.start()
    monkeypatch.setenv("KAKASHI_KALSHI_KEY_ID", "ws-key")
    monkeypatch.setenv("KAKASHI_KALSHI_KEY_FILE", key_path)
    try:
        with FakeKalshiServer(FakeKalshi.with_markets(4, public_key=pub, key_id="ws-key")) as rest:
            yield (
                ws,
                KakashiConfig(
                    kalshi=KalshiSection(api_base=rest.base_url, ws_url=ws.url, backoff_base_s=0.02, timeout_s=2.0),
                    catalog=CatalogSection(**catalog),
                ),
            )
    finally:
        ws.stop()
