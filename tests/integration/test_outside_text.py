"""Text from outside is never printed raw (issue #20, item 8).

A kill reason is anyone's text: ``kakashi kill --reason`` writes it from another process as a
request row that the running engine adopts. One with a line break, a screen-clearing escape, a
bidi override and a forged log line must come out escaped wherever it is shown: a running
headless engine's tick lines, ``kakashi status``, the next run's lines, the log file and the
alerts. Real processes, a real database, a real log file.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time

from kakashi_tui.adapters.alerts import Alerter
from kakashi_tui.frontends.logfile import OperatorLog
from kakashi_tui.trading.config import KakashiConfig
from kakashi_tui.trading.runtime import Options, build_service
from tests.clirun import ENV, in_process

FORGED = "2026-01-01T00:00:00.000Z COMMAND  rearm"
REASON = f"cron\n{FORGED}\x1b[2J\x1b]0;owned\x07\u202eok\r"
ESCAPED = f"cron\\n{FORGED}\\x1b[2J\\x1b]0;owned\\x07\\u202eok\\r"


def assert_clean(text: str) -> None:
    """Nothing in ``text`` acts on a terminal, and no line is the forged one."""
    for bad in ("\x1b", "\x07", "\r", "\u202e"):
        assert bad not in text, (bad, text)
    assert not any(line.startswith(FORGED[:24]) for line in text.splitlines()), text


class Lines:
    """A process's output, line by line, as it comes (a reader thread; waits poll with a timeout)."""

    def __init__(self, stream) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.all: list[str] = []  # every line, once the stream has ended (``text``)

        def read() -> None:
            for ln in stream:
                self.all.append(ln)
                self.q.put(ln)

        self.thread = threading.Thread(target=read, daemon=True)
        self.thread.start()

    def text(self) -> str:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()
        return "".join(self.all)

    def wait_for(self, pred, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if pred(line):
                return line
        raise AssertionError(f"no such line within {timeout}s: {''.join(self.seen)[-2000:]}")


def test_a_hostile_kill_reason_from_another_process_is_escaped_everywhere_it_is_shown(capfd, tmp_path):
    db = str(tmp_path / "k.db")
    assert in_process(capfd, "run", "--headless", "--ticks", "2", "--db", db).returncode == 0  # a database to start
    run = subprocess.Popen(
        [sys.executable, "-m", "kakashi_tui", "run", "--headless", "--interval", "0.02", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    out, err = Lines(run.stdout), Lines(run.stderr)
    try:
        out.wait_for(lambda ln: ln.startswith("tick "))
        kill = in_process(capfd, "kill", "--db", db, "--reason", REASON)  # a request row the running engine adopts
        assert kill.returncode == 0 and "next tick" in kill.stdout, kill.stderr
        halted = out.wait_for(lambda ln: ln.startswith("tick ") and "HALTED" in ln)
        assert halted.rstrip("\n").endswith(f"HALTED (kill switch: {ESCAPED})")
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
    assert run.returncode == 0, err.text()
    assert_clean(out.text() + err.text())
    assert out.all[-1].startswith("stopped after") and out.all[-1].rstrip("\n").endswith(ESCAPED + ")")

    status = in_process(capfd, "status", "--db", db)
    assert status.returncode == 0, status.stderr
    assert_clean(status.stdout)
    assert f"kill switch THROWN ({ESCAPED}) | not paused" in status.stdout

    again = in_process(capfd, "run", "--headless", "--ticks", "2", "--db", db)  # a restart says what it restored
    assert again.returncode == 0, again.stderr
    assert_clean(again.stdout + again.stderr)
    assert f"resumed: HALTED (kill switch: {ESCAPED}) since" in again.stdout
    assert again.stdout.count(ESCAPED) == 5  # the start line, the restored line, two ticks, the summary

    # The headless runs' log file beside the database: the reason escaped in every line.
    headless_log = (tmp_path / "kakashi.log").read_text()
    assert_clean(headless_log)
    assert ESCAPED in headless_log

    # A log written by hand: the tick line, an alert quoting the reason, a raw note.
    service, close = build_service(Options(db=db), KakashiConfig(), interval=0)
    log = OperatorLog(tmp_path / "desk.log")
    try:
        report = service.step()
        assert report is not None
        log.tick(report.log_line())
        Alerter(log=log)("kill_external", f"kill switch thrown from outside this desk: {REASON}", "error")
        log.command(REASON)
    finally:
        log.close()
        close()
    text = (tmp_path / "desk.log").read_text()
    assert_clean(text)
    lines = text.splitlines()
    assert len(lines) == 3 and all(ESCAPED in ln for ln in lines), text
    assert lines[2].endswith(f"COMMAND  run={log.run_id} {ESCAPED}")


def test_a_hostile_file_name_is_escaped_in_the_lines_that_name_it(capfd, tmp_path):
    db = tmp_path / "k\n2026-01-01 FORGED\x1b[2J.db"  # a name the operator (or a script) typed
    run = in_process(capfd, "run", "--headless", "--ticks", "1", "--db", str(db))
    assert run.returncode == 0, run.stderr
    assert_clean(run.stdout + run.stderr)
    assert "k\\n2026-01-01 FORGED\\x1b[2J.db" in run.stdout  # the start line names it, escaped
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"type": "start", "ts": 1767571200000}\n')
    replay = in_process(capfd, "replay", "--input", str(jsonl), "--db", str(tmp_path / "r\x1b[2J.db"))
    assert replay.returncode == 0, replay.stderr
    assert_clean(replay.stdout + replay.stderr)
    assert "r\\x1b[2J.db" in replay.stdout
    missing = in_process(
        capfd, "replay", "--input", str(tmp_path / "gone\x1b[2J.jsonl"), "--db", str(tmp_path / "x.db")
    )
    assert missing.returncode == 2 and "gone\\x1b[2J.jsonl" in missing.stderr
    assert_clean(missing.stderr)
