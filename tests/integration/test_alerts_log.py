"""The operator's log file and alerts: real files, a real HTTP server on loopback for the webhook."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from kakashi_tui.adapters.alerts import (
    DAILY_STOP,
    FEED_DOWN,
    Alerter,
    FeedWatch,
    Webhook,
    check_webhook_url,
)
from kakashi_tui.frontends.logfile import OperatorLog, default_log_path


def test_log_lines_are_one_per_event_and_grep_friendly(tmp_path):
    log = OperatorLog(tmp_path / "kakashi.log")
    log.tick("tick 1 2026-01-05T00:01:00Z | saved 8 rejected 0")
    log.command("pause")
    log.alert("feed down: HTTP 503\non GET /markets")  # a newline must not split the record
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        log.error("engine failed", e)
    log.close()
    lines = (tmp_path / "kakashi.log").read_text().splitlines()
    assert len(lines) == 4
    cats = [line.split()[1] for line in lines]
    assert cats == ["TICK", "COMMAND", "ALERT", "ERROR"]
    assert all(line[:4].isdigit() and line[23] == "Z" for line in lines)  # 2026-...T..:..:..mmmZ
    assert "HTTP 503\\non GET /markets" in lines[2]  # shown as an escape, one rule for outside text
    assert "engine failed | Traceback" in lines[3] and "RuntimeError: boom" in lines[3]
    assert (tmp_path / "kakashi.log").stat().st_mode & 0o077 == 0


def test_log_rotates_by_size(tmp_path):
    log = OperatorLog(tmp_path / "k.log", max_bytes=2_000, backups=2)
    for i in range(200):
        log.tick(f"tick {i} " + "x" * 50)
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["k.log", "k.log.1", "k.log.2"]
    assert (tmp_path / "k.log").stat().st_size <= 2_000


def test_log_default_path_is_beside_the_db(tmp_path):
    assert default_log_path(tmp_path / "sub" / "kakashi.db") == (tmp_path / "sub" / "kakashi.log").resolve()


def test_log_writes_nothing_to_the_terminal(tmp_path, capsys):
    log = OperatorLog(tmp_path / "k.log")
    log.alert("feed down")
    log.close()
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://ntfy.sh/my-desk", True),
        ("http://127.0.0.1:8080/hook", True),
        ("https://hooks.slack.com/services/T/B/X", True),
        ("https://api.elections.kalshi.com/trade-api/v2", False),
        ("https://kalshi.com/x", False),
        ("https://user:secret@ntfy.sh/x", False),
        ("ftp://example.com/x", False),
        ("not a url", False),
    ],
)
def test_webhook_urls_are_checked(url, ok):
    if ok:
        assert check_webhook_url(url) == url
    else:
        with pytest.raises(ValueError):
            check_webhook_url(url)


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers.get("Content-Type"), json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def hook_server():
    _Hook.received = []
    _Hook.status = 200
    srv = HTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}/hook"
    srv.shutdown()
    srv.server_close()


def test_alert_fans_out_to_log_notification_bell_and_webhook(tmp_path, hook_server):
    log = OperatorLog(tmp_path / "k.log")
    seen, bells, errors = [], [], []
    hook = Webhook(hook_server, on_error=errors.append)
    alert = Alerter(
        log=log, notify=seen.append, bell=lambda: bells.append(1), webhook=hook, clock=lambda: 1_767_571_200
    )
    alert(DAILY_STOP, "daily loss cap hit: no new trades today", "error")
    hook.flush()
    alert.close()
    log.close()
    assert [a.kind for a in seen] == [DAILY_STOP] and bells == [1] and errors == []
    ctype, body = _Hook.received[0]
    assert ctype == "application/json"
    assert body == {
        "source": "kakashi",
        "paper": True,
        "kind": "daily_stop",
        "severity": "error",
        "message": "daily loss cap hit: no new trades today",
        "ts": "2026-01-05T00:00:00Z",
    }
    assert re.search(r"ALERT    run=\w{8} daily_stop: daily loss cap hit", (tmp_path / "k.log").read_text())


def test_a_failing_webhook_is_reported_not_raised(hook_server):
    _Hook.status = 500
    errors = []
    hook = Webhook(hook_server, on_error=errors.append)
    Alerter(webhook=hook)(FEED_DOWN, "feed down")
    hook.flush()
    hook.close()
    assert errors and "HTTP 500" in errors[0]


def test_no_bell_when_turned_off():
    seen = []
    Alerter(notify=seen.append, bell=None)(FEED_DOWN, "x")
    assert len(seen) == 1


def test_feed_watch_goes_down_on_errors_or_stale_quotes_and_up_when_fresh():
    w = FeedWatch(stale_ms=30_000)
    assert w.update(1_000, (), 5_000) is None and w.down_since is None
    assert w.update(2_000, ("HTTP 503",), 6_000) == "down" and w.down_since == 2_000
    assert w.update(3_000, ("HTTP 503",), 7_000) is None and w.down_since == 2_000  # still down, same since
    assert w.update(4_000, (), 1_000) == "up" and w.down_since is None
    assert w.update(5_000, (), 44_000) == "down" and "44s old (limit 30s)" in w.reason
