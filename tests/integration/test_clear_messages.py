"""Clear messages (issue #20, item 9): each failure says what it is, in one line, and loses
nothing. Real SQLite files; the commands through ``cli.main`` in-process, their output captured at
the file descriptors (a fresh process per command cost ~0.7 s of CPU each, for nothing these tests
look at), and in a real process where the environment is part of the case.

How the disk's troubles are made real without a small disk (tests run as root, so file modes
cannot make anything read-only):
- disk full: SQLite's own limit on the file's size, ``PRAGMA max_page_count``, on the engine's
  connection. SQLite then fails a write exactly as on a full disk (SQLITE_FULL, "database or
  disk is full") and rolls the transaction back itself.
- read-only: the database file's header says so. A write version above 2 (byte 18) is SQLite's
  documented "read-only database" marker: it opens the file and refuses every write with
  SQLITE_READONLY ("attempt to write a readonly database"), for root too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kakashi_tui.adapters.alerts import check_webhook_url
from kakashi_tui.adapters.replay import read_jsonl
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.trading.config import KakashiConfig, load_config
from kakashi_tui.trading.runtime import Options, build_engine
from kakashi_tui.trading.service import TradingService
from tests.clirun import ENV, in_process
from tests.conftest import SIM_START_MS

T = SIM_START_MS


def error_line(p: subprocess.CompletedProcess[str], code: int) -> str:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == code and len(lines) == 1, (p.returncode, p.stderr)
    assert lines[0].startswith("kakashi: error: ") and "Traceback" not in p.stderr
    return lines[0]


# -- a full disk says "disk full" -----------------------------------------------------------------
def test_a_full_disk_says_disk_full_not_cannot_rollback_and_loses_nothing(tmp_path):
    said: list[str] = []
    engine = build_engine(Options(db=str(tmp_path / "k.db"), sim_start_ms=T), KakashiConfig())
    service = TradingService(engine, interval=0, max_consecutive_failures=3, log=said.append)
    try:
        assert service.step() is not None
        db = engine.store.db  # this thread's connection: the one the steps below write with
        pages = db.execute_sql("PRAGMA page_count").fetchone()[0]
        db.execute_sql(f"PRAGMA max_page_count = {pages}")  # the file may not grow: a full disk
        stored = 1
        while service.step() is not None:  # until a tick needs a page more (a tick or two)
            stored += 1
            assert stored < 50
        for _ in range(2):
            assert service.step() is None
        assert said[0] == "tick failed: disk full (database or disk is full)", said
        assert all("disk full" in s and "cannot rollback" not in s for s in said), said
        assert said[-1].startswith("kill switch thrown: 3 failed ticks in a row (tick failed: disk full")
        assert "disk full" in service.stats.last_failure
        db.execute_sql("PRAGMA max_page_count = 1073741823")  # space again: the next tick goes on
        report = service.step()
        assert report is not None and report.tick == stored + 1  # the ticks stored, then this one
    finally:
        engine.store.close()


# -- a read-only database says it is read-only ----------------------------------------------------
def test_a_read_only_database_says_so_and_is_left_as_it_was(capfd, tmp_path):
    db = tmp_path / "k.db"
    assert in_process(capfd, "run", "--headless", "--ticks", "2", "--db", str(db)).returncode == 0
    with open(db, "r+b") as f:  # the header's write version: above 2, SQLite opens it read-only
        f.seek(18)
        f.write(bytes([3]))
    before = db.read_bytes()
    for args in (("run", "--headless", "--ticks", "1"), ("kill",), ("pause",), ("rearm", "--yes")):
        line = error_line(in_process(capfd, *args, "--db", str(db)), 2)
        assert line == f"kakashi: error: database {db}: read-only (attempt to write a readonly database)", args
    status = in_process(capfd, "status", "--db", str(db))  # reading needs no write
    assert status.returncode == 0 and "kill switch armed" in status.stdout, status.stderr
    assert db.read_bytes() == before


# -- report --since after --until is refused --------------------------------------------------------
def test_a_since_after_until_is_refused_by_report_and_replay(capfd, tmp_path):
    db = tmp_path / "k.db"
    assert in_process(capfd, "run", "--headless", "--ticks", "2", "--db", str(db)).returncode == 0
    window = ("--since", "2026-01-06", "--until", "2026-01-05")
    line = error_line(in_process(capfd, "report", "--db", str(db), "--out", str(tmp_path / "r"), *window), 2)
    assert line == "kakashi: error: --until is before --since"
    assert not (tmp_path / "r").exists()
    (tmp_path / "cat").mkdir()
    p = in_process(capfd, "replay", "--catalog", str(tmp_path / "cat"), "--db", str(tmp_path / "r.db"), *window)
    assert error_line(p, 2) == "kakashi: error: --until is before --since"


# -- the simulator refuses --beliefs it would ignore ------------------------------------------------
def test_the_simulator_refuses_beliefs_it_would_ignore(capfd, tmp_path):
    beliefs = tmp_path / "b.csv"
    beliefs.write_text("ticker,p_hat\nSIM-7-0001,0.9\n")
    for cmd in (("run", "--headless", "--ticks", "1"), ("snapshot",), ("record", "--passes", "1")):
        line = error_line(in_process(capfd, *cmd, "--beliefs", str(beliefs), "--db", str(tmp_path / "k.db")), 2)
        assert "--beliefs" in line and "simulator" in line, line
        assert not (tmp_path / "k.db").exists()
    # Kalshi unreachable: the snapshot still falls back to the simulator (whose oracle gives p_hat).
    p = in_process(
        capfd,
        "snapshot",
        "--source",
        "kalshi",
        "--api-base",
        "http://127.0.0.1:9/trade-api/v2",
        "--beliefs",
        str(beliefs),
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        str(_fast_kalshi(tmp_path)),
    )
    assert p.returncode == 0 and "falling back to the simulated exchange" in p.stderr, p.stderr


def _fast_kalshi(tmp_path: Path) -> Path:
    cfg = tmp_path / "fast.toml"
    cfg.write_text("[kalshi]\ntimeout_s = 0.5\nmax_retries = 0\nbackoff_base_s = 0.01\n")
    return cfg


# -- a config error names its section and key as the user wrote them ---------------------------------
CONFIG_NAMES = [
    ("[fees.series]\nKXHIGH = 2\n", "[fees.series] KXHIGH = 2: Input should be less than or equal to 1"),
    ('[fees.series]\n"" = 0.1\n', '[fees.series] "": String should have at least 1 character'),
    ('[fees.series]\n"KX HIGH" = 2\n', '[fees.series] "KX HIGH" = 2: Input should be less than or equal to 1'),
    ("[risk]\nmax_quote_age_s = 0.0001\n", "[risk] max_quote_age_s = 0.0001: Input should be greater than or equal"),
    ("[risk.extra]\nx = 1\n", "[risk.extra]: unknown section"),
    ('[kalshi]\n"time out" = 5\n', '[kalshi] "time out": unknown key; did you mean timeout_s?'),
]


@pytest.mark.parametrize("text, expected", CONFIG_NAMES, ids=[c[1].split(":")[0] for c in CONFIG_NAMES])
def test_a_config_error_names_its_section_and_key_as_written(tmp_path, text, expected):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(str(cfg))
    assert str(e.value) == f"{cfg}: {expected}" or str(e.value).startswith(f"{cfg}: {expected}"), str(e.value)


# -- a non-ASCII key id is refused at start ------------------------------------------------------------
def test_a_non_ascii_key_id_is_refused_at_start_not_found_unreachable(capfd, tmp_path):
    from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, make_test_key

    key_path, pub = make_test_key(tmp_path)
    kid = "clé-ключ-0001"
    env = {**ENV, "KAKASHI_KALSHI_KEY_ID": kid, "KAKASHI_KALSHI_KEY_FILE": key_path}
    with FakeKalshiServer(FakeKalshi.with_markets(4, public_key=pub, key_id=kid)) as rest:
        p = in_process(
            capfd,
            "snapshot",
            "--source",
            "kalshi",
            "--api-base",
            rest.base_url,
            "--db",
            str(tmp_path / "k.db"),
            env=env,
        )
        assert rest.state.requests == []  # refused before any request
    line = error_line(p, 2)
    assert "Kalshi API key id" in line and "ASCII" in line and kid not in p.stdout + p.stderr
    assert "Snapshot saved" not in p.stdout


# -- a 5,000-digit argument is not echoed in full ---------------------------------------------------------
@pytest.mark.parametrize("option", ["--interval", "--ticks", "--seed"])
def test_a_five_thousand_digit_argument_is_not_echoed_in_full(capfd, tmp_path, option):
    line = error_line(in_process(capfd, "run", "--headless", option, "1" * 5000, "--db", str(tmp_path / "k.db")), 2)
    assert line.startswith(f"kakashi: error: argument {option}: ") and line.endswith("(see 'kakashi run --help')")
    assert len(line) < 200 and "1" * 41 not in line and "..." in line, line


# -- a webhook URL with a credential in its query is refused -----------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://ntfy.sh/desk?token=tk_SECRET",
        "https://hooks.example.com/x?channel=a&api_key=SECRET",
        "https://hooks.example.com/x?access_token=SECRET",
        "https://func.example.net/api/alert?code=SECRET",
        "https://hooks.example.com/x#sig=SECRET",
    ],
)
def test_a_webhook_url_with_a_credential_in_its_query_is_refused_without_repeating_it(capfd, tmp_path, url):
    with pytest.raises(ValueError, match="must not carry credentials") as e:
        check_webhook_url(url)
    assert "SECRET" not in str(e.value)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[alerts]\nwebhook_url = "{url}"\n')
    line = error_line(in_process(capfd, "status", "--config", str(cfg), "--db", str(tmp_path / "k.db")), 2)
    assert "[alerts] webhook_url" in line and "credentials" in line and "SECRET" not in line
    assert check_webhook_url("https://ntfy.sh/desk?priority=high") == "https://ntfy.sh/desk?priority=high"


# -- a UTF-8 BOM at the start of a JSONL file is accepted --------------------------------------------------
def test_a_utf8_bom_at_the_start_of_a_jsonl_file_is_accepted(capfd, tmp_path):
    f = tmp_path / "bom.jsonl"
    records = [
        {"type": "start", "ts": T},
        {"type": "market", "ticker": "A", "close_ts": T + 86_400_000},
        {"type": "snapshot", "ticker": "A", "ts": T + 60_000, "yes_bid": "0.40", "yes_ask": "0.45"},
    ]
    f.write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in records).encode() + b"\n")
    assert [(i, why) for i, _rec, why in read_jsonl(f)] == [(1, None), (2, None), (3, None)]
    p = in_process(capfd, "replay", "--input", str(f), "--db", str(tmp_path / "r.db"))
    assert p.returncode == 0 and "rejected rows 0" in p.stdout, p.stdout + p.stderr
    p = in_process(capfd, "catalog", "import", "--input", str(f), "--catalog", str(tmp_path / "cat"))
    assert p.returncode == 0 and "0 rows rejected" in p.stdout, p.stdout + p.stderr


def test_a_headless_run_whose_every_tick_failed_exits_1(tmp_path, capsys, monkeypatch):
    """A cron job or supervisor reads the exit code: a headless run where no tick completed (a
    full disk, every tick) exited 0 like a good run. It now says why in one line and exits 1; a
    run with some good ticks still exits 0 (its failures are in the log)."""
    from kakashi_tui.frontends.cli import main as cli
    from kakashi_tui.trading.engine import Engine

    def full(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Engine, "apply_batch", full)
    code = cli.main(["run", "--headless", "--ticks", "3", "--db", str(tmp_path / "k.db")])
    err = capsys.readouterr().err
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("kakashi: error: no tick completed (3 failed; the last: tick failed: disk full"), err
    monkeypatch.undo()
    assert cli.main(["run", "--headless", "--ticks", "2", "--db", str(tmp_path / "k.db")]) == 0
