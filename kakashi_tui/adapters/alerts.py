"""Alerts the operator should not miss, and the feed watch that raises two of them.

An alert goes to every channel the operator turned on: the desk's notification (the caller's
``notify``), the terminal bell, the log file, and optionally a webhook: a POST of a small JSON
object to the operator's own URL (ntfy, a Slack incoming webhook, ...). The webhook is off by
default, is never a Kalshi host, never carries credentials, and is sent from one background
thread with a short timeout so a slow endpoint cannot stall the desk.

No Textual import here: the headless engine raises the same alerts.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from kakashi_tui.core.text import safe_text

#: The alert kinds (the JSON's "kind").
KILL_EXTERNAL = "kill_external"
DAILY_STOP = "daily_stop"
FEED_DOWN = "feed_down"
FEED_UP = "feed_up"
ENGINE_FAILED = "engine_failed"
KEY_REFUSED = "key_refused"
FILL = "fill"  # one per paper fill (``[alerts] fills = false`` turns them off)
DAILY_SUMMARY = "daily_summary"  # a UTC day's figures, when it is over
UNCLEAN_STOP = "unclean_stop"  # the previous run stopped without a clean quit (said at the next start)
PLAN_KILL = "plan_kill"  # a plan's kill condition was met: the engine paused trading (core/plan.py)
KINDS = (
    KILL_EXTERNAL,
    DAILY_STOP,
    FEED_DOWN,
    FEED_UP,
    ENGINE_FAILED,
    KEY_REFUSED,
    FILL,
    DAILY_SUMMARY,
    UNCLEAN_STOP,
    PLAN_KILL,
)
#: News, not alarms: these never ring the bell.
QUIET = frozenset({FILL, DAILY_SUMMARY})

WEBHOOK_TIMEOUT_S = 3.0
WEBHOOK_QUEUE = 50
ALERT_LIMIT = 500  # characters of one alert's message


#: Query (or fragment) parameter names that carry a credential: ``?token=``, ``?api_key=``,
#: ``?sig=``, ``?access_token=``, Azure's ``?code=``... (matched anywhere in the name, any case).
CREDENTIAL_PARAMS = ("token", "key", "secret", "pass", "pwd", "auth", "sig", "credential", "session", "code")


def check_webhook_url(url: str) -> str:
    """The URL as given, or ValueError with a one-line reason: http(s), a host, no credentials in
    it (neither user:password@ nor a token in its query), and not Kalshi (alerts are the
    operator's; Kalshi's API is read-only to Kakashi). A refusal never repeats a credential."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = f"{parts.scheme}://{parts.hostname}" if parts.scheme or parts.hostname else url.split("?")[0]
        raise ValueError(f"webhook must be an http(s) URL with a host, got {safe_text(repr(shown), 80)}")
    if parts.username or parts.password:
        raise ValueError("webhook URL must not carry credentials (user:password@)")
    for name, _value in parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(
        parts.fragment, keep_blank_values=True
    ):
        if any(w in name.lower() for w in CREDENTIAL_PARAMS):
            raise ValueError(f"webhook URL must not carry credentials (query parameter {safe_text(repr(name), 40)})")
    host = parts.hostname.lower().rstrip(".")
    if "kalshi" in host:
        raise ValueError(f"webhook must not point at Kalshi ({host})")
    return url.strip()


@dataclass(frozen=True)
class Alert:
    kind: str
    message: str
    ts_ms: int
    severity: str = "warning"  # information | warning | error

    def payload(self) -> dict:
        """The webhook body: the alert only (no config, no keys, no positions)."""
        return {
            "source": "kakashi",
            "paper": True,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.ts_ms / 1000)),
        }


class Webhook:
    """POSTs alerts, one at a time, from a daemon thread. ``post`` never blocks and never raises."""

    def __init__(
        self, url: str, on_error: Callable[[str], None] | None = None, timeout: float = WEBHOOK_TIMEOUT_S
    ) -> None:
        self.url = check_webhook_url(url)
        self.timeout = timeout
        self.on_error = on_error
        self.sent = 0
        self._q: queue.Queue[Alert | None] = queue.Queue(maxsize=WEBHOOK_QUEUE)
        self._thread = threading.Thread(target=self._run, name="kakashi-webhook", daemon=True)
        self._thread.start()

    def post(self, alert: Alert) -> None:
        try:
            self._q.put_nowait(alert)
        except queue.Full:
            if self.on_error:
                self.on_error("webhook queue full: alert dropped")

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while True:
                alert = self._q.get()
                if alert is None:
                    return
                try:
                    r = client.post(self.url, json=alert.payload())
                    if r.status_code >= 400:
                        raise RuntimeError(f"HTTP {r.status_code}")
                    self.sent += 1
                except Exception as e:
                    if self.on_error:
                        self.on_error(f"webhook {urlsplit(self.url).hostname}: {e.__class__.__name__}: {e}")
                finally:
                    self._q.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until what was posted has been sent or failed."""
        deadline = time.monotonic() + timeout
        while self._q.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout=1)


class Alerter:
    """Fans an alert out: log, notification, bell (not for ``QUIET`` kinds), webhook. Each channel is optional."""

    def __init__(
        self,
        log=None,
        notify: Callable[[Alert], None] | None = None,
        bell: Callable[[], None] | None = None,
        webhook: Webhook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log = log
        self.notify = notify
        self.bell = bell
        self.webhook = webhook
        self.clock = clock
        self.raised: list[Alert] = []

    def __call__(self, kind: str, message: str, severity: str = "warning") -> Alert:
        # The message may quote outside text (a kill reason, a server's words): every channel
        # (the log, the desk, the webhook's receiver) gets it escaped and bounded (core/text.py).
        a = Alert(kind, safe_text(message, ALERT_LIMIT), int(self.clock() * 1000), severity)
        self.raised.append(a)
        del self.raised[:-100]
        if self.log is not None:
            self.log.alert(f"{kind}: {message}")
        if self.notify is not None:
            self.notify(a)
        if self.bell is not None and kind not in QUIET:
            self.bell()
        if self.webhook is not None:
            self.webhook.post(a)
        return a

    def close(self) -> None:
        if self.webhook is not None:
            self.webhook.close()


class FeedWatch:
    """Is the market data alive? Down when a fetch fails or the freshest quote is older than the
    stale limit; up again when a fetch succeeds with a fresh quote. ``update`` returns the
    transition ("down" / "up") or None; ``down_since`` is when it went down (engine clock)."""

    def __init__(self, stale_ms: int) -> None:
        self.stale_ms = stale_ms
        self.down_since: int | None = None
        self.reason = ""

    def update(self, now_ms: int, errors, freshest_age_ms: int | None, fetch_ms: float = 0.0) -> str | None:
        """``fetch_ms``: how long the tick's fetch took. The outage is dated from when it began:
        a failed fetch from its start (not from when the client gave up), stale quotes from the
        freshest quote's time."""
        began = now_ms
        if errors:
            reason = str(errors[0])
            began = now_ms - int(fetch_ms)
        elif freshest_age_ms is not None and freshest_age_ms > self.stale_ms:
            reason = f"quotes stale: the freshest is {freshest_age_ms // 1000}s old (limit {self.stale_ms // 1000}s)"
            began = now_ms - freshest_age_ms
        else:
            reason = ""
        if reason and self.down_since is None:
            self.down_since, self.reason = began, reason
            return "down"
        if not reason and self.down_since is not None:
            self.down_since, self.reason = None, ""
            return "up"
        if reason:
            self.reason = reason
        return None
