"""Issue #19, "A week, sized": ``kakashi status --health`` for cron and a supervisor, and the
alert a run raises when the one before it stopped without a clean quit. Real engines, real
processes, real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from kakashi_tui.trading.service import Kill, TradingService
from tests.clirun import ENV, in_process
from tests.conftest import make_engine


def health(capfd, db) -> subprocess.CompletedProcess:
    return in_process(capfd, "status", "--health", "--db", str(db))


def until(pred, timeout: float = 30.0, every: float = 0.02):
    """Poll ``pred`` until it returns something true (returned), or give up with the last value."""
    end = time.monotonic() + timeout
    got = pred()
    while not got and time.monotonic() < end:
        time.sleep(every)
        got = pred()
    return got


class Blockable:
    """A source whose fetch blocks while ``hang`` is set (a server that never answers)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.hang = threading.Event()
        self.hanging = threading.Event()
        self.release = threading.Event()

    def now_ms(self) -> int:
        return self.inner.now_ms()

    def fetch(self):
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait(60)
        return self.inner.fetch()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_health_of_a_running_engine_healthy_halted_stalled_then_a_clean_quit(capfd, tmp_path):
    db = tmp_path / "k.db"
    e = make_engine(db)
    src = e.source = Blockable(e.source)
    service = TradingService(e, interval=0.05)
    service.start()
    try:
        assert until(lambda: service.stats.ticks >= 2)
        p = health(capfd, db)
        assert p.returncode == 0 and p.stdout.startswith("healthy: RUNNING, last tick "), p.stdout + p.stderr
        assert f"pid {os.getpid()}" in p.stdout and len(p.stdout.splitlines()) == 1
        service.submit(Kill("health test"))
        p = until(lambda: (q := health(capfd, db)).returncode == 1 and q)
        assert p and p.stdout.startswith("HALTED: kill switch thrown (health test); the engine ticks"), p
        src.hang.set()  # the next fetch never answers: no tick comes
        assert src.hanging.wait(30)
        p = until(lambda: (q := health(capfd, db)).returncode == 3 and q)
        assert p and p.stdout.startswith("STALLED since ") and "a tick every 0.05s; late after 3s" in p.stdout, p
        src.release.set()
        assert until(lambda: health(capfd, db).returncode == 1)  # ticking again: halted, not stalled
    finally:
        src.release.set()
        service.stop(clean=True)
        e.store.close()
    p = health(capfd, db)
    assert p.returncode == 0 and p.stdout.startswith("not running (last run quit cleanly at "), p.stdout
    assert "HALTED (kill switch: health test)" in p.stdout


def _headless(db: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kakashi_tui", "run", "--headless", "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def _first_tick(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("tick "):
            return
    raise AssertionError("the run printed no tick")


def test_a_run_killed_with_sigkill_is_dead_and_the_next_start_alerts_once(capfd, tmp_path):
    db = tmp_path / "k.db"
    proc = _headless(db, "--interval", "0.05")
    try:
        _first_tick(proc)
        started = datetime.now(UTC)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    p = health(capfd, db)
    assert p.returncode == 4, p.stdout + p.stderr
    assert p.stdout.startswith(f"DEAD: the run (started {started:%Y-%m-%d} ") and f"pid {proc.pid}" in p.stdout
    assert "stopped without a clean quit; last tick " in p.stdout
    # kakashi status says the same facts the long way
    assert "engine not running" in in_process(capfd, "status", "--db", str(db)).stdout

    again = in_process(capfd, "run", "--headless", "--ticks", "2", "--db", str(db))
    assert again.returncode == 0, again.stderr
    said = [ln for ln in again.stderr.splitlines() if "previous run" in ln]
    assert len(said) == 1 and said[0].startswith("kakashi: ALERT the previous run (started "), again.stderr
    assert said[0].endswith(p.stdout.split("; last tick ")[1].strip())  # the dead run's last tick, named
    log = (tmp_path / "kakashi.log").read_text()
    assert sum("stopped without a clean quit" in ln for ln in log.splitlines()) == 1
    assert "ALERT    " in log and "unclean_stop: the previous run (started " in log
    p = health(capfd, db)
    assert p.returncode == 0 and p.stdout.startswith("not running (last run quit cleanly at ")
    third = in_process(capfd, "run", "--headless", "--ticks", "1", "--db", str(db))
    assert third.returncode == 0 and "previous run" not in third.stderr  # a clean quit: nothing to say


def test_sigterm_is_a_clean_quit(capfd, tmp_path):
    db = tmp_path / "k.db"
    proc = _headless(db, "--interval", "0.05")
    _first_tick(proc)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    p = health(capfd, db)
    assert p.returncode == 0 and p.stdout.startswith("not running (last run quit cleanly at "), p.stdout


def test_health_on_no_database_is_the_one_line_error(capfd, tmp_path):
    p = health(capfd, tmp_path / "none.db")
    assert p.returncode == 2 and p.stderr.strip() == f"kakashi: error: no database at {tmp_path / 'none.db'}"
    assert not (tmp_path / "none.db").exists()


def test_a_crash_is_not_a_clean_quit_and_a_desk_that_ran_its_ticks_is_not_stalled(capfd, tmp_path):
    db = tmp_path / "k.db"
    e = make_engine(db)
    service = TradingService(e, interval=0.0, max_ticks=3)
    service.start()
    assert service.finished.wait(30)
    p = health(capfd, db)  # done ticking, still open (a desk with --ticks waits for q): nothing is due
    assert p.returncode == 0 and p.stdout.startswith("healthy: RUNNING, ran its last tick at "), p.stdout
    service.stop()  # not clean: what run_desk does after a crash
    e.store.close()
    assert health(capfd, db).returncode == 4
    e2 = make_engine(db)
    s2 = TradingService(e2, interval=0.0, max_ticks=1)
    try:
        assert s2.unclean_previous is None  # read at start, not before
        s2.start()
        assert s2.unclean_previous is not None and s2.unclean_previous.started_ms is not None
    finally:
        s2.stop(clean=True)
        e2.store.close()
