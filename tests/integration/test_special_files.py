"""Special files and files that are not ours (issue #20, items 2 and 4): a device or a named
pipe named as the database, config, beliefs, key, replay or catalog file is refused at once in
one line and left exactly as it was; ``--save-jsonl`` never overwrites unasked, nor a database.

Devices and pipes are made in tmp_path (never the machine's own /dev/null). Every command given
a device or a pipe runs in a real subprocess with a timeout, so a command that waits on a pipe
fails the test instead of hanging it; commands on regular files run in-process (``cli.main``).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kakashi_tui.adapters.beliefs import BeliefsFile
from kakashi_tui.adapters.crashlog import owner_only
from tests.clirun import ENV, in_process
from tests.conftest import make_engine

QUICK_S = 30  # a refusal is immediate; a command waiting on a pipe runs into this


def one_error_line(p: subprocess.CompletedProcess[str], code: int = 2) -> str:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == code and len(lines) == 1 and lines[0].startswith("kakashi: error: "), (
        p.returncode,
        p.stderr,
    )
    return lines[0]


def null_device(folder: Path) -> Path:
    """A private copy of the null device (char 1,3), mode 0666 as /dev/null is."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root (CI runs as root)")
    p = folder / "null"
    os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(p, 0o666)  # whatever the umask
    return p


def fifo(folder: Path, name: str = "fifo") -> Path:
    p = folder / name
    os.mkfifo(p, 0o644)
    os.chmod(p, 0o644)
    return p


# -- files the operator names: config, beliefs, key, replay and catalog files ---------------------
@pytest.mark.parametrize("kind", ["device", "fifo"])
@pytest.mark.timeout(QUICK_S)  # a command waiting on the pipe runs into this: the test fails
def test_a_device_or_pipe_as_config_beliefs_key_or_replay_file_is_refused_at_once(capfd, tmp_path, kind):
    f = null_device(tmp_path) if kind == "device" else fifo(tmp_path)
    words = f"not a regular file ({'a character device' if kind == 'device' else 'a named pipe'})"
    kalshi = ("--source", "kalshi", "--api-base", "http://127.0.0.1:9/trade-api/v2")
    cases = [
        (("run", "--headless", "--ticks", "1", "--config", str(f)), f"cannot read config {f}: {words}"),
        (("snapshot", *kalshi, "--beliefs", str(f)), f"{f}: cannot read beliefs file: {words}"),
        (("replay", "--input", str(f)), f"cannot read replay file {f}: {words}"),
        (("catalog", "import", "--input", str(f), "--catalog", "cat"), f"cannot read replay file {f}: {words}"),
    ]
    for i, (args, expected) in enumerate(cases):
        p = in_process(capfd, *args, "--db", str(tmp_path / f"k{i}.db"))
        assert expected in one_error_line(p), args
    key_env = {"KAKASHI_KALSHI_KEY_ID": "id", "KAKASHI_KALSHI_KEY_FILE": str(f)}
    p = in_process(capfd, "snapshot", *kalshi, "--strict", "--db", str(tmp_path / "key.db"), env=key_env)
    assert f"cannot read Kalshi key file {f}: {words}" in one_error_line(p)


@pytest.mark.timeout(QUICK_S)
def test_a_pipe_among_the_catalog_files_is_refused_at_once(capfd, tmp_path):
    from kakashi_tui.adapters.catalog import CatalogWriter

    w = CatalogWriter(tmp_path / "cat", roll_s=float("inf"))
    e = make_engine(tmp_path / "k.db", catalog=w)
    for _ in range(5):
        e.tick()
    w.close()
    e.store.close()
    day = next((tmp_path / "cat" / "snapshots").glob("date=*"))
    pipe = fifo(day, "zzz-planted.parquet")
    for args in (("catalog", "info", "--catalog", "cat"), ("replay", "--catalog", "cat", "--db", "r.db")):
        p = in_process(capfd, *args)
        line = one_error_line(p, 1)
        assert f"{pipe.relative_to(tmp_path)} is unreadable: not a regular file (a named pipe)" in line, args


def test_a_beliefs_file_swapped_for_a_pipe_is_ignored_and_said_once(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text("[beliefs]\nKXA = 0.4\n")
    b = BeliefsFile(path)
    os.replace(fifo(tmp_path, "new.toml"), path)  # what a careless `mkfifo` + `mv` does mid-run
    done = []
    import threading

    t = threading.Thread(target=lambda: done.append(b.estimates(["KXA"], 1)), daemon=True)
    t.start()
    t.join(QUICK_S)  # (a reader waiting on the pipe would stay here)
    assert done, "reading the beliefs file waited on a pipe"
    assert [e.p_hat for e in done[0]] == [b.beliefs["KXA"]] and str(b.beliefs["KXA"]) == "0.4"
    said = b.take_said()
    assert len(said) == 1 and "b.toml: cannot read beliefs file: not a regular file (a named pipe)" in said[0]
    assert "last good p_hat kept for KXA" in said[0]
    b.estimates(["KXA"], 2)
    assert len(said) == 1  # said once, not each tick


def test_a_headless_kalshi_run_keeps_ticking_when_its_beliefs_file_becomes_a_pipe(tmp_path):
    from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer

    beliefs = tmp_path / "b.toml"
    with FakeKalshiServer(FakeKalshi.with_markets(4)) as srv:
        ticker = FakeKalshi.with_markets(4).markets[0].ticker
        beliefs.write_text(f"[beliefs]\n{ticker} = 0.5\n")
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "kakashi_tui", "run", "--headless", "--source", "kalshi"),
                *("--api-base", srv.base_url, "--beliefs", str(beliefs), "--interval", "0.1"),
                *("--ticks", "8", "--db", str(tmp_path / "k.db")),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        try:
            deadline = time.monotonic() + 60
            seen = 0
            while seen < 2 and time.monotonic() < deadline:
                seen += proc.stdout.readline().startswith("tick ")
            os.replace(fifo(tmp_path, "p.toml"), beliefs)
            out, err = proc.communicate(timeout=QUICK_S)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped after 8 ticks" in out.splitlines()[-1]
    told = [ln for ln in err.splitlines() if "beliefs reloaded" in ln]
    assert len(told) == 1 and "not a regular file (a named pipe)" in told[0], err
    assert f"last good p_hat kept for {ticker}" in told[0]


# -- the database: a device or a pipe is refused, and its mode is never changed -----------------------
DB_COMMANDS = [
    ("run", "--headless", "--ticks", "1", "--db", "{f}"),
    ("status", "--db", "{f}"),
    ("report", "--no-charts", "--db", "{f}"),
    ("kill", "--db", "{f}"),
    ("pause", "--db", "{f}"),
    ("rearm", "--yes", "--db", "{f}"),
    ("snapshot", "--db", "{f}"),
    ("replay", "--from-db", "{f}", "--db", "r.db"),
    ("catalog", "import", "--from-db", "{f}", "--catalog", "cat"),
]


@pytest.mark.parametrize("kind", ["device", "fifo"])
@pytest.mark.parametrize("args", DB_COMMANDS, ids=[" ".join(a[:2]) for a in DB_COMMANDS])
@pytest.mark.timeout(QUICK_S)
def test_a_device_or_pipe_named_as_the_database_is_refused_and_left_as_it_was(capfd, tmp_path, kind, args):
    f = null_device(tmp_path) if kind == "device" else fifo(tmp_path)
    before = f.stat()
    p = in_process(capfd, *(a.format(f=f) for a in args))
    kind_words = "a character device" if kind == "device" else "a named pipe"
    assert f"{f}: not a regular file ({kind_words}); left untouched" in one_error_line(p)
    after = f.stat()
    assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before.st_mode)  # /dev/null stays usable by all
    assert (after.st_uid, after.st_rdev, stat.S_IFMT(after.st_mode)) == (
        before.st_uid,
        before.st_rdev,
        stat.S_IFMT(before.st_mode),
    )
    assert not Path(f"{f}-wal").exists() and not Path(f"{f}-shm").exists()


def test_owner_only_leaves_devices_pipes_and_other_users_files_alone(tmp_path):
    dev, pipe = null_device(tmp_path), fifo(tmp_path)
    theirs = tmp_path / "theirs.log"
    theirs.write_text("x")
    os.chmod(theirs, 0o644)
    os.chown(theirs, 12345, 12345)  # another user's file (we are root: chmod would succeed)
    mine = tmp_path / "mine.log"
    mine.write_text("x")
    os.chmod(mine, 0o644)
    owner_only(dev, pipe, theirs, mine)
    assert [stat.S_IMODE(p.stat().st_mode) for p in (dev, pipe, theirs, mine)] == [0o666, 0o644, 0o644, 0o600]


# -- replay --save-jsonl: never over a database, never over a file unasked -----------------------
@pytest.fixture(scope="module")
def old_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("old") / "old.db"
    e = make_engine(path)
    for _ in range(20):
        e.tick()
    e.store.close()
    return path


def test_save_jsonl_refuses_the_runs_own_database_and_an_existing_file_without_force(tmp_path, old_db, capfd):
    import shutil

    db = tmp_path / "old.db"
    shutil.copy(old_db, db)
    before = db.read_bytes()
    for args, expected in [
        (("--save-jsonl", str(db), "--db", "r1.db"), f"--save-jsonl {db} is {db}, a database of this replay"),
        (("--save-jsonl", str(db), "--force", "--db", "r1.db"), "a database of this replay; it is never overwritten"),
        (("--save-jsonl", "r2.db", "--db", "r2.db"), "--save-jsonl r2.db is r2.db, a database of this replay"),
        (("--save-jsonl", f"{db}-wal", "--force", "--db", "r3.db"), "a database of this replay"),
    ]:
        p = in_process(capfd, "replay", "--from-db", str(db), *args)
        assert expected in one_error_line(p), args
    assert db.read_bytes() == before and not any(Path(f"r{i}.db").exists() for i in (1, 2, 3))
    other = tmp_path / "other.db"  # any SQLite file, even one this replay does not touch
    shutil.copy(old_db, other)
    p = in_process(capfd, "replay", "--from-db", str(db), "--save-jsonl", str(other), "--force", "--db", "r4.db")
    assert f"--save-jsonl {other} is a SQLite database; it is never overwritten" in one_error_line(p)
    assert other.read_bytes() == before

    out = tmp_path / "run.jsonl"
    out.write_text("keep me\n")
    p = in_process(capfd, "replay", "--from-db", str(db), "--save-jsonl", str(out), "--db", "r5.db")
    assert f"--save-jsonl {out} already exists; pass --force to overwrite it" in one_error_line(p)
    assert out.read_text() == "keep me\n" and not Path("r5.db").exists()
    os.chmod(out, 0o644)
    p = in_process(capfd, "replay", "--from-db", str(db), "--save-jsonl", str(out), "--force", "--db", "r6.db")
    assert p.returncode == 0, p.stderr
    assert out.read_text().startswith('{"type":"start"') and stat.S_IMODE(out.stat().st_mode) == 0o600
    fresh = tmp_path / "fresh.jsonl"
    p = in_process(capfd, "replay", "--from-db", str(db), "--save-jsonl", str(fresh), "--db", "r7.db")
    assert p.returncode == 0 and fresh.read_text() == out.read_text()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    p = in_process(capfd, "replay", "--from-db", str(db), "--force", "--db", "r8.db")
    assert "--force needs --save-jsonl" in one_error_line(p)


@pytest.mark.timeout(QUICK_S)
def test_save_jsonl_never_writes_into_a_device_or_pipe(capfd, tmp_path, old_db):
    dev, pipe = null_device(tmp_path), fifo(tmp_path)
    for f, words in ((dev, "a character device"), (pipe, "a named pipe")):
        p = in_process(capfd, "replay", "--from-db", str(old_db), "--save-jsonl", str(f), "--force", "--db", "r.db")
        assert f"--save-jsonl {f} is {words}, not a file it may overwrite" in one_error_line(p)
    assert stat.S_IMODE(dev.stat().st_mode) == 0o666 and stat.S_ISCHR(dev.stat().st_mode)
    assert stat.S_ISFIFO(pipe.stat().st_mode)


# -- readers on a database another tool wrote ----------------------------------------------------
def _edited(old_db: Path, tmp_path: Path, sql: str) -> Path:
    import shutil

    db = tmp_path / "t.db"
    shutil.copy(old_db, db)
    c = sqlite3.connect(db)
    try:
        assert c.execute(sql).rowcount > 0
        c.commit()
    finally:
        c.close()
    return db


@pytest.mark.parametrize(
    "sql, commands, expected",
    [
        (
            "UPDATE ticks SET ts = 'x' WHERE tick = (SELECT MAX(tick) FROM ticks)",
            ["status", "report", "run"],
            "ts is 'x', not a time in epoch ms",
        ),
        (
            "UPDATE ticks SET ts = 1e300 WHERE tick = (SELECT MAX(tick) FROM ticks)",
            ["status", "report", "run"],
            "ts is '1e+300', not a time in epoch ms",
        ),
        ("UPDATE ticks SET ts = -5 WHERE tick = 3", ["report"], "ticks row 3: ts is '-5'"),
        ("UPDATE ticks SET equity_cc = 'abc' WHERE tick = 3", ["report"], "ticks row 3: equity_cc is 'abc'"),
        ("UPDATE ticks SET cash_cc = 1.5 WHERE tick = 3", ["report"], "ticks row 3: cash_cc is '1.5'"),
    ],
)
def test_a_hand_edited_ticks_row_is_a_corrupt_database_for_status_report_and_run(
    old_db, tmp_path, capfd, sql, commands, expected
):
    db = _edited(old_db, tmp_path, sql)
    before = db.read_bytes()
    args = {
        "status": ("status",),
        "report": ("report", "--no-charts", "--out", "rep"),
        "run": ("run", "--headless", "--ticks", "1"),
    }
    for c in commands:
        line = one_error_line(in_process(capfd, *args[c], "--db", str(db)), 1)
        assert line.startswith("kakashi: error: corrupt database: ticks row ") and expected in line, (c, line)
    assert db.read_bytes() == before


def test_status_report_and_catalog_import_refuse_a_newer_schema(old_db, tmp_path, capfd):
    db = _edited(old_db, tmp_path, "UPDATE control SET value = '99' WHERE key = 'schema_version'")
    before = db.read_bytes()
    for args in (
        ("status",),
        ("report", "--no-charts", "--out", "rep"),
        ("catalog", "import", "--from-db", str(db), "--catalog", "cat"),
        ("replay", "--from-db", str(db), "--db", "r.db"),
        ("run", "--headless", "--ticks", "1"),
    ):
        line = one_error_line(in_process(capfd, *args, "--db", str(db)))
        assert f"{db} has schema version 99, newer than this Kakashi" in line and "upgrade Kakashi" in line, args
    assert db.read_bytes() == before and not Path("rep").exists() and not Path("cat").exists()
