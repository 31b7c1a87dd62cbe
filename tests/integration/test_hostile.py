"""Hostile input from the operator's side (issue #14): numbers, URLs, beliefs, replay files,
tampered databases and files others could read. Each case goes through a real entry point
(the CLI in-process via ``cli.main`` or in a subprocess, real files, a real SQLite database)
and has one expected outcome: a rejected row with its reason, or one line and exit 2 / exit 1.
No case may end in exit 70 (an internal error) or a traceback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakashi_tui.adapters.beliefs import BeliefsFile
from kakashi_tui.adapters.replay import MAX_TS, MIN_TS, ReplayEstimator, ReplaySource, group_ticks, read_jsonl
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.frontends.cli import main as cli
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.trading.engine import Engine, EngineConfig
from tests.clirun import ENV, in_process

T = 1_767_571_200_000  # 2026-01-05T00:00:00Z


@pytest.fixture(autouse=True)
def _keep_umask():
    old = os.umask(0o022)  # cli.main sets 0o077 for the process: put the test's back afterwards
    os.umask(old)
    yield
    os.umask(old)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


# -- 1. numbers and URLs from the operator: one line naming [section] key, exit 2 -----------------
CONFIG_CASES = [
    (
        "risk-quote-age-inf",
        "[risk]\nmax_quote_age_s = inf\n",
        "[risk] max_quote_age_s = inf: Input should be a finite number",
    ),
    (
        "risk-quote-age-nan",
        "[risk]\nmax_quote_age_s = nan\n",
        "[risk] max_quote_age_s = nan: Input should be a finite number",
    ),
    ("bankroll-1e30", "bankroll = 1e30\n", "bankroll = 1e+30: Input should be less than or equal to 100000000"),
    ("bankroll-nan", "bankroll = nan\n", "bankroll = nan: Input should be a finite number"),
    ("bankroll-subcent", "bankroll = 10.001\n", "bankroll = 10.001: Decimal input should have no more than 2 decimal"),
    (
        "sim-step-1e16",
        "[sim]\nstep_seconds = 1e16\n",
        "[sim] step_seconds = 1e+16: Input should be less than or equal to 86400",
    ),
    ("sim-step-int-1e16", "[sim]\nstep_seconds = 10000000000000000\n", "[sim] step_seconds = 10000000000000000: "),
    ("sim-noise-nan", "[sim]\noracle_noise = nan\n", "[sim] oracle_noise = nan: Input should be a finite number"),
    ("sim-seed-huge", "[sim]\nseed = 9223372036854775807\nmarkets = 0\n", "[sim] markets = 0: "),
    ("kalshi-timeout-inf", "[kalshi]\ntimeout_s = inf\n", "[kalshi] timeout_s = inf: Input should be a finite number"),
    (
        "kalshi-timeout-huge",
        "[kalshi]\ntimeout_s = 1e9\n",
        "[kalshi] timeout_s = 1000000000.0: Input should be less than",
    ),
    (
        "kalshi-backoff-nan",
        "[kalshi]\nbackoff_base_s = nan\n",
        "[kalshi] backoff_base_s = nan: Input should be a finite",
    ),
    (
        "fee-negative",
        "[fees]\ntaker_multiplier = -0.07\n",
        "[fees] taker_multiplier = -0.07: Input should be greater than",
    ),
    ("fee-series-negative", "[fees.series]\nINX = -0.01\n", "[fees.series] INX = -0.01: Input should be greater than"),
    ("fee-series-nan", "[fees.series]\nINX = nan\n", "[fees.series] INX = nan: Input should be a finite number"),
    (
        "strategy-kelly-nan",
        "[strategy]\nkelly_fraction = nan\n",
        "[strategy] kelly_fraction = nan: Input should be a finite",
    ),
    (
        "strategy-edge-inf",
        "[strategy]\nedge_threshold = inf\n",
        "[strategy] edge_threshold = inf: Input should be a finite",
    ),
    ("risk-spread-0.99", "[risk]\nmax_spread = 0.99\n", "[risk] max_spread = 0.99: loosens the max spread past 0.05"),
    (
        "risk-quote-age-1000d",
        "[risk]\nmax_quote_age_s = 86400000\n",
        "[risk] max_quote_age_s = 86400000: loosens the stale-quote guard past 30 s",
    ),
    (
        "risk-per-trade-5",
        "[risk]\nmax_loss_per_trade_pct = 5\n",
        "[risk] max_loss_per_trade_pct = 5: loosens the per-trade",
    ),
    (
        "risk-daily-10",
        "[risk]\ndaily_loss_cap_pct = 10\n",
        "[risk] daily_loss_cap_pct = 10: loosens the daily loss cap",
    ),
    (
        "risk-positions-6",
        "[risk]\nmax_open_positions = 6\n",
        "[risk] max_open_positions = 6: loosens max open positions",
    ),
    ("risk-positions-1e30", "[risk]\nmax_open_positions = 1e30\n", "[risk] max_open_positions = 1e+30: "),
    (
        "risk-spread-negative",
        "[risk]\nmax_spread = -0.01\n",
        "[risk] max_spread = -0.01: Input should be greater than 0",
    ),
    ("typo-key", "[risk]\nmax_spred = 0.01\n", "[risk] max_spred: unknown key; did you mean max_spread?"),
    ("typo-top", "bankrol = 5\n", "bankrol: unknown key; did you mean bankroll?"),
    ("typo-section", "[riks]\nmax_spread = 0.01\n", "[riks]: unknown section; did you mean [risk]?"),
    (
        "api-base-notaurl",
        '[kalshi]\napi_base = "notaurl"\n',
        "[kalshi] api_base: not an http(s) URL with a host: 'notaurl'",
    ),
    (
        "api-base-no-host",
        '[kalshi]\napi_base = "https:///trade-api/v2"\n',
        "[kalshi] api_base: not an http(s) URL with a host",
    ),
    (
        "api-base-ftp",
        '[kalshi]\napi_base = "ftp://example.com/x"\n',
        "[kalshi] api_base: not an http(s) URL with a host",
    ),
    (
        "api-base-bad-port",
        '[kalshi]\napi_base = "http://127.0.0.1:99999/x"\n',
        "[kalshi] api_base: not an http(s) URL (bad port",
    ),
    (
        "api-base-userinfo",
        '[kalshi]\napi_base = "https://u:p@example.com/x"\n',
        "must not carry a user name or password",
    ),
    ("db-nul", 'db = "a\\u0000b.db"\n', "db: must be a file path"),
]


@pytest.mark.parametrize("name, text, expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_corpus_is_refused_in_one_line_naming_section_and_key(tmp_path, capsys, name, text, expected):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    code, out, err = run_cli(capsys, "snapshot", "--config", str(cfg), "--db", str(tmp_path / "k.db"))
    line = one_line(err)
    assert code == 2 and line.startswith(f"kakashi: error: {cfg}: "), err
    assert expected in line, line
    assert not (tmp_path / "k.db").exists()  # refused before anything was opened


def test_every_risk_default_is_the_loosest_allowed(tmp_path):
    """The defaults are the bounds: each default loads, and one step looser is refused."""
    from decimal import Decimal

    from kakashi_tui.core.errors import ConfigError
    from kakashi_tui.trading.config import KakashiConfig, RiskSection, load_config

    loose = {
        "max_loss_per_trade_pct": "1.01",
        "max_open_positions": "6",
        "daily_loss_cap_pct": "3.01",
        "max_quote_age_s": "30.5",
        "max_spread": "0.06",
        "max_drawdown_pct": "10.01",
        "max_event_loss_pct": "2.01",
    }
    numeric = {k for k, f in RiskSection.model_fields.items() if f.annotation in (int, float, Decimal)}
    assert set(loose) == numeric  # a new numeric limit needs its bound here (and in the doc)
    defaults = KakashiConfig().risk
    for key, value in loose.items():
        ok = tmp_path / f"{key}-ok.toml"
        ok.write_text(f"[risk]\n{key} = {getattr(defaults, key)}\n")
        load_config(str(ok))
        bad = tmp_path / f"{key}.toml"
        bad.write_text(f"[risk]\n{key} = {value}\n")
        with pytest.raises(ConfigError, match=rf"\[risk\] {key} = .*may only tighten"):
            load_config(str(bad))
        assert Decimal(value) > Decimal(str(getattr(defaults, key)))
    doc = (Path(__file__).resolve().parents[2] / "risk_limits.md").read_text()
    for key in loose:
        assert f"`{key}`:" in doc  # each bound is documented


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("notaurl", "not an http(s) URL with a host: 'notaurl'"),
        ("http://", "not an http(s) URL with a host"),
        ("file:///etc/passwd", "not an http(s) URL with a host"),
        ("http://[::1", "bad port or host"),
        ("http://127.0.0.1:0/x", "port 0"),
        ("http://exa mple.com/", "not an http(s) URL"),
        ("https://example.com/x?token=1", "no query or fragment"),
    ],
)
def test_api_base_argument_is_refused_in_one_line(tmp_path, capsys, url, fragment):
    code, out, err = run_cli(
        capsys, "snapshot", "--source", "kalshi", "--api-base", url, "--strict", "--db", str(tmp_path / "k.db")
    )
    line = one_line(err)
    assert code == 2 and "argument --api-base" in line and fragment in line, line


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--seed", "-5"), "argument --seed: must be between 0 and 2^63-1, got -5"),
        (("--seed", str(2**64)), "argument --seed: must be between 0 and 2^63-1"),
        (("--config", "/dev/zero"), "cannot read config /dev/zero: not a regular file (a character device)"),
        (("--config", "/"), "cannot read config /"),
    ],
)
def test_absurd_arguments_and_config_files_are_refused_in_one_line(tmp_path, capsys, args, fragment):
    code, out, err = run_cli(capsys, "snapshot", *args, "--db", str(tmp_path / "k.db"))
    assert code == 2 and fragment in one_line(err)


def test_a_config_file_too_large_to_be_one_is_refused_in_one_line(tmp_path, capsys):
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n")
    code, out, err = run_cli(capsys, "snapshot", "--config", str(big), "--db", str(tmp_path / "k.db"))
    assert code == 2 and f"config {big} is larger than 1024 KiB" in one_line(err)


def test_a_config_that_is_not_utf8_is_refused_in_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b"\xff\xfe[risk]\n")
    code, out, err = run_cli(capsys, "snapshot", "--config", str(cfg), "--db", str(tmp_path / "k.db"))
    assert code == 2 and "is not valid TOML" in one_line(err)


def test_a_malformed_api_base_in_the_environment_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KAKASHI_API_BASE", "notaurl")
    code, out, err = run_cli(capsys, "snapshot", "--source", "kalshi", "--strict", "--db", str(tmp_path / "k.db"))
    line = one_line(err)
    assert code == 2 and "environment KAKASHI_API_BASE: not an http(s) URL with a host: 'notaurl'" in line, line


def test_a_good_api_base_is_accepted():
    from kakashi_tui.trading.config import check_api_base

    for url in (
        "https://api.elections.kalshi.com/trade-api/v2",
        "http://127.0.0.1:8765/trade-api/v2",
        "http://[::1]:8080/x",
        "https://demo-api.kalshi.co/trade-api/v2/",
    ):
        assert check_api_base(url) == url


# -- 2. beliefs: refused line by line at start-up; a running engine keeps the last good ------------
BELIEF_CASES = [
    ("nan", "b.toml", "[beliefs]\nKXA = 0.6\nKXB = nan\n", ":3: KXB: p_hat must be a finite number, got nan"),
    ("inf", "b.toml", "[beliefs]\nKXB = inf\n", ":2: KXB: p_hat must be a finite number, got inf"),
    ("one", "b.toml", "[beliefs]\nKXB = 1\n", ":2: KXB: p_hat must be strictly between 0 and 1, got 1"),
    ("zero", "b.toml", "[beliefs]\nKXB = 0.0\n", ":2: KXB: p_hat must be strictly between 0 and 1, got 0.0"),
    ("negative", "b.toml", "[beliefs]\nKXB = -0.2\n", ":2: KXB: p_hat must be strictly between 0 and 1"),
    ("junk-value", "b.toml", "[beliefs]\nKXB = nope\n", ":2: KXB: p_hat is not a number"),
    ("junk-line", "b.toml", "[beliefs]\nthis is not a belief\n", ":2: not 'ticker = p_hat'"),
    ("bool", "b.toml", "[beliefs]\nKXB = true\n", ":2: KXB: p_hat is not a number"),
    ("dup", "b.toml", "[beliefs]\nKXB = 0.2\nKXB = 0.3\n", ":3: KXB: already on line 2"),
    ("other-table", "b.toml", "[beliefs]\nKXB = 0.2\n[other]\nx = 1\n", ":3: unexpected table [other]"),
    ("bad-ticker", "b.toml", '[beliefs]\n"KX B" = 0.2\n', ":2: ticker 'KX B' holds spaces"),
    ("csv-nan", "b.csv", "ticker,p_hat\nKXA,0.5\nKXB,NaN\n", ":3: KXB: p_hat must be a finite number, got NaN"),
    ("csv-snan", "b.csv", "KXB,sNaN\n", ":1: KXB: p_hat must be a finite number, got sNaN"),
    ("csv-inf", "b.csv", "KXB,-Infinity\n", ":1: KXB: p_hat must be a finite number, got -Infinity"),
    ("csv-outside", "b.csv", "KXB,1.5\n", ":1: KXB: p_hat must be strictly between 0 and 1, got 1.5"),
    ("csv-junk", "b.csv", "KXA,0.5\n<<<garbage>>>\n", ":2: <<<garbage>>>: expected 'ticker,p_hat'"),
    ("csv-three", "b.csv", "KXB,0.2,0.3\n", ":1: KXB: expected 'ticker,p_hat'"),
    ("csv-nul", "b.csv", "KXB\x00,0.2\n", ":1: ticker 'KXB\\\\x00' holds spaces or unprintable characters"),
    ("binary", "b.toml", "\udcff\udcfe\x00\x01", ": beliefs file is not UTF-8 text"),
]


@pytest.mark.parametrize("name, fname, text, expected", BELIEF_CASES, ids=[c[0] for c in BELIEF_CASES])
def test_beliefs_corpus_is_refused_at_start_up_naming_file_and_line(tmp_path, capsys, name, fname, text, expected):
    f = tmp_path / fname
    f.write_bytes(text.encode("utf-8", "surrogateescape"))
    code, out, err = run_cli(
        capsys,
        "snapshot",
        "--source",
        "kalshi",
        "--strict",
        "--beliefs",
        str(f),
        "--api-base",
        "http://127.0.0.1:9/trade-api/v2",
        "--db",
        str(tmp_path / "k.db"),
    )
    line = one_line(err)
    assert code == 2 and line.startswith(f"kakashi: error: {f}"), line
    assert expected in line, line


def test_a_running_engine_keeps_the_last_good_beliefs_and_says_which_lines_were_refused(tmp_path):
    f = tmp_path / "b.toml"
    f.write_text("[beliefs]\nKXA = 0.6\nKXB = 0.3\nKXC = 0.2\n")
    b = BeliefsFile(f)
    assert b.problems == () and b.last_error is None
    f.write_text("[beliefs]\nKXA = nan\nKXB = 0.35\njunk\nKXD = 1.5\n")  # KXC deleted
    os.utime(f, ns=(1, 10**18))
    est = {e.ticker: e.p_hat for e in b.estimates(["KXA", "KXB", "KXC", "KXD"], 1000)}
    assert {k: str(v) for k, v in est.items()} == {"KXA": "0.6", "KXB": "0.35"}
    r = b.last_reload
    assert r.changed == ("KXB",) and r.removed == ("KXC",) and r.kept == ("KXA",)
    assert [(p.line, p.ticker) for p in r.refused] == [(2, "KXA"), (4, None), (5, "KXD")]
    assert b.problems == r.refused and "b.toml:2: KXA: p_hat must be a finite number" in b.last_error
    assert "last good p_hat kept for KXA" in r.summary()
    f.unlink()  # gone mid-run: everything stays in force
    assert [e.ticker for e in b.estimates(["KXA", "KXB"], 2000)] == ["KXA", "KXB"]
    assert "cannot read beliefs file" in b.last_error and b.last_reload.kept == ("KXA", "KXB")
    f.write_bytes(b"\x00\xff binary now")
    assert len(b.estimates(["KXA", "KXB"], 3000)) == 2 and "not UTF-8" in b.last_error
    f.write_text("[beliefs]\nKXA = 0.61\n")  # mended: problems clear
    os.utime(f, ns=(1, 3 * 10**18))
    assert [str(e.p_hat) for e in b.estimates(["KXA"], 4000)] == ["0.61"] and b.problems == ()
    assert b.unmatched == frozenset()
    b.estimates(["OTHER"], 5000)
    assert b.unmatched == frozenset({"KXA"})


def test_an_engine_ticking_on_a_beliefs_file_survives_a_nan_and_applies_the_next_good_edit(tmp_path):
    from kakashi_tui.adapters.source import FetchBatch
    from tests.integration.test_engine import FakeSource, row

    f = tmp_path / "b.toml"
    f.write_text("[beliefs]\nT = 0.6\n")
    b = BeliefsFile(f)
    e = Engine(Store(tmp_path / "k.db"), FakeSource([FetchBatch(rows=[row()])] * 4), [b], EngineConfig())
    try:
        e.tick()
        for n, text in enumerate(("[beliefs]\nT = nan\n", "[beliefs]\nT = 0.65\n"), start=1):
            f.write_text(text)
            os.utime(f, ns=(1, n * 10**18))
            e.tick()  # (a NaN here used to raise out of the tick and stop the engine)
            if n == 1:
                assert b.last_reload.kept == ("T",) and "T: p_hat must be a finite number" in b.last_error
        ps = [p for (p,) in e.store.db.execute_sql("SELECT p_hat FROM estimates WHERE ticker = 'T' ORDER BY id")]
        assert ps == [0.6, 0.65] and b.problems == ()
    finally:
        e.store.close()


def test_headless_kalshi_run_keeps_ticking_when_the_beliefs_file_is_corrupted_mid_run(tmp_path):
    beliefs = tmp_path / "b.toml"
    db = tmp_path / "k.db"
    with FakeKalshiServer(FakeKalshi.with_markets(4)) as srv:
        ticker = FakeKalshi.with_markets(4).markets[0].ticker
        beliefs.write_text(f"[beliefs]\n{ticker} = 0.5\n")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kakashi_tui",
                "run",
                "--headless",
                "--source",
                "kalshi",
                "--api-base",
                srv.base_url,
                "--beliefs",
                str(beliefs),
                "--interval",
                "0.2",
                "--ticks",
                "14",
                "--db",
                str(db),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        seen: list[str] = []

        def until(n: int) -> None:
            deadline = time.time() + 60
            while time.time() < deadline and len(seen) < n:
                ln = proc.stdout.readline()
                if ln.startswith("tick "):
                    seen.append(ln)

        until(3)
        beliefs.write_text(f"[beliefs]\n{ticker} = nan\n")  # the NaN that used to kill the engine
        os.utime(beliefs, ns=(1, 10**18))
        until(7)  # ticks that read the NaN file
        beliefs.write_text(f"[beliefs]\n{ticker} = 0.55\n")  # then a good edit still applies
        os.utime(beliefs, ns=(1, 2 * 10**18))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    # the operator was told, on stderr, which line was refused and that the last good p_hat stayed
    told = [ln for ln in err.splitlines() if "beliefs reloaded" in ln]
    assert any(
        f"b.toml:2: {ticker}: p_hat must be a finite number" in ln and f"last good p_hat kept for {ticker}" in ln
        for ln in told
    ), err
    ticks = seen + [ln for ln in out.splitlines() if ln.startswith("tick ")]
    assert len(ticks) == 14 and out.splitlines()[-1].startswith("stopped after 14 ticks")
    with sqlite3.connect(db) as c:
        stored = [p for (p,) in c.execute("SELECT p_hat FROM estimates WHERE ticker = ? ORDER BY id", (ticker,))]
        quoted = c.execute("SELECT COUNT(*) FROM snapshots WHERE ticker = ?", (ticker,)).fetchone()[0]
    assert all(0 < p < 1 for p in stored)  # never NaN
    if not quoted:  # estimates are taken for quoted markets only; today's Kalshi rows need money's validation
        pytest.xfail("Kalshi rows are rejected until the money branch lands (as in test_loopback)")
    assert stored == [0.5, 0.55]  # the last good value, then the good edit after the NaN


# -- 3. replay input: every record a verdict with its reason -------------------------------------
def snap(ts, ticker="A", **kw):
    return {
        "type": "snapshot",
        "ticker": ticker,
        "ts": ts,
        "yes_bid": "0.40",
        "yes_ask": "0.45",
        "book": {"yes": [["0.40", 10]], "no": [["0.55", 10]]},
        **kw,
    }


# (record or raw line, expected reason fragment or None when the record is accepted)
REPLAY_CASES = [
    ({"type": "start", "ts": T}, None),
    ({"type": "market", "ticker": "A", "close_ts": T + 86_400_000}, None),
    (snap(T + 60_000), None),
    (snap(T + 10**10), "snapshot record dated ahead of the file's clock (ts 1777571200000; the next record is at"),
    (snap(T + 120_000), None),
    (snap(10**17), "ts 100000000000000000 is outside 2000-01-01..2100-01-01 in epoch ms"),
    (snap(2**63 + 5), "ts 9223372036854775813 is outside 2000-01-01..2100-01-01 in epoch ms"),
    (snap((T + 180_000) * 1000), "ts 1767571380000000 looks like epoch microseconds, not milliseconds"),
    (snap((T + 180_000) // 1000), "ts 1767571380 looks like epoch seconds, not milliseconds"),
    (snap((T + 180_000) * 1_000_000), "looks like epoch nanoseconds"),
    (snap(T + 180_000, volume=2**63 + 5), "snapshot volume 9223372036854775813 is outside 0..2^63-1"),
    (snap(T + 180_000, volume="1e30"), "snapshot volume 1e30 is outside 0..2^63-1"),
    (snap(T + 180_000, volume=-5), "snapshot volume -5 is outside 0..2^63-1"),
    (
        snap(T + 180_000, book={"yes": [["0.40", 2**63]], "no": []}),
        "snapshot book level quantity 9223372036854775808 is outside 0..2^63-1",
    ),
    (
        '{"type": "snapshot", "ticker": "A", "ts": 1767571380000, "volume": 100000000000000000000000000000}',
        "snapshot volume 1e+29 is outside 0..2^63-1",
    ),
    ({"type": "market", "ticker": "B", "close_ts": 10**30}, "market record close_ts: not an integer epoch ms"),
    ({"type": "market", "ticker": "B", "close_ts": 10**17}, "market record close_ts: ts 100000000000000000 is outside"),
    ({"type": "market", "ticker": "B" * 5000}, "market record: ticker longer than 200 characters"),
    ({"type": "market", "ticker": "B\u0000"}, "market record: ticker 'B\\\\x00' holds spaces or unprintable"),
    ({"type": "market", "ticker": "B", "title": "\u001b[2Jgone"}, "market record title holds unprintable characters"),
    (snap(T + 180_000, ticker="KX/../../portfolio/orders x"), "holds spaces or unprintable characters"),
    (snap(T + 180_000, ticker={"a": 1}), "snapshot record with a ticker that is not text"),
    (
        {"type": "estimate", "ticker": "A", "ts": T + 180_000, "p_hat": "NaN"},
        "estimate p_hat: Input should be a finite",
    ),
    (
        {"type": "estimate", "ticker": "A", "ts": T + 180_000, "p_hat": "0.5", "source": "s" * 500},
        "estimate source longer than 100 characters",
    ),
    ({"type": "start", "ts": T}, "start record after the first tick"),
    ("\udcff\udcfe not utf-8", "malformed JSON"),
    ('{"type": "snapshot", "ticker": "\\ud800", "ts": 1767571380000}', "malformed JSON"),
    ("[1, 2]", "record is not a JSON object"),
    (snap(T + 60_000), "out of time order (1767571260000 < 1767571380000)"),
    (snap(T + 180_000), None),
]


def test_replay_corpus_each_record_gets_its_verdict_through_the_cli(capfd, tmp_path):
    f = tmp_path / "hostile.jsonl"
    lines = [x if isinstance(x, str) else json.dumps(x) for x, _ in REPLAY_CASES]
    f.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    db = tmp_path / "r.db"
    p = in_process(capfd, "replay", "--input", str(f), "--db", str(db))
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    want_rejected = [(i, why) for i, (_, why) in enumerate(REPLAY_CASES, start=1) if why]
    assert f"rejected rows {len(want_rejected)}" in p.stdout, p.stdout
    with sqlite3.connect(db) as c:
        reasons = [r for (r,) in c.execute("SELECT reason FROM rejected_rows ORDER BY id")]
        snaps = [ts for (ts,) in c.execute("SELECT ts FROM snapshots ORDER BY id")]
        took = [ts for (ts,) in c.execute("SELECT ts FROM ticks WHERE saved > 0 ORDER BY tick")]
        clock = c.execute("SELECT MAX(ts) FROM ticks").fetchone()[0]
    for i, why in want_rejected:
        assert any(r.startswith(f"line {i}: ") and why in r for r in reasons), (i, why, reasons)
    assert took == [T + 60_000, T + 120_000, T + 180_000]  # the rest of the file after the future record
    assert snaps == [T + 180_000]  # the market's latest quote is stored (a replay keeps the latest per commit)
    assert clock == T + 180_000  # the future record never became the replay's clock


def test_a_binary_replay_file_is_refused_in_one_line(tmp_path, capsys):
    f = tmp_path / "kakashi.db.jsonl"
    f.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    code, out, err = run_cli(capsys, "replay", "--input", str(f), "--db", str(tmp_path / "r.db"))
    assert code == 2 and "is binary, not JSONL text" in one_line(err)


def test_an_over_long_replay_line_is_one_rejected_row(tmp_path):
    f = tmp_path / "long.jsonl"
    with open(f, "w") as out:
        out.write('{"type": "snapshot", "ticker": "' + "A" * (2 << 20) + '"}\n')
        out.write(json.dumps(snap(T + 60_000)) + "\n")
    recs = list(read_jsonl(f))
    assert recs[0] == (1, None, "line longer than 1 MiB") and recs[1][0] == 2 and recs[1][1]["ts"] == T + 60_000


# -- the property: random records at replay, every record a verdict, nothing raises --------------
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(["0.42", "0.4", "1", "0", "NaN", "-Infinity", "1e30", "0.4200", "yes", "no", ""]),
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_ts = st.one_of(
    st.integers(T, T + 600_000).map(lambda x: x - x % 60_000),
    st.integers(MIN_TS - 5, MAX_TS + 5),
    st.sampled_from([10**17, 2**63 + 5, T * 1000, T // 1000, 0, -1]),
    _json_scalars,
)
_level = st.one_of(
    st.tuples(
        st.sampled_from(["0.40", "0.39", "0.55", 0.5, "x"]), st.one_of(st.integers(-2, 2**64), _json_scalars)
    ).map(list),
    _json,
)
_record = st.fixed_dictionaries(
    {"type": st.sampled_from(["start", "market", "snapshot", "estimate", "settlement", "bogus", None]), "ts": _ts},
    optional={
        "ticker": st.one_of(st.sampled_from(["A", "B", "", "A B", "K\u0000"]), _json_scalars, _json),
        "yes_bid": st.one_of(st.sampled_from(["0.40", "0.41"]), _json_scalars),
        "yes_ask": st.one_of(st.sampled_from(["0.45", "0.44"]), _json_scalars),
        "last": _json_scalars,
        "volume": st.one_of(st.integers(-1, 2**64 - 1), _json_scalars),
        "book": st.one_of(
            st.fixed_dictionaries({"yes": st.lists(_level, max_size=3), "no": st.lists(_level, max_size=3)}), _json
        ),
        "p_hat": st.one_of(st.sampled_from(["0.6", "0.3"]), _json_scalars),
        "source": _json_scalars,
        "result": st.one_of(st.sampled_from(["yes", "no"]), _json_scalars),
        "close_ts": _ts,
        "open_ts": _ts,
        "title": _json_scalars,
    },
)
_line = st.one_of(
    _record.map(json.dumps),  # (json: integers of any size, written as the world might)
    st.binary(max_size=20).map(lambda b: b.decode("latin-1").replace("\n", " ")),
    st.sampled_from(["", "[]", "null", "{", '"x"']),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, max_size=25))
def test_property_random_replay_records_each_get_a_verdict_and_nothing_raises(lines):
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "r.jsonl"
        # each record carries its line number: accepted rows can be traced back to their line
        tagged = []
        for i, ln in enumerate((ln.replace("\x00", " ") for ln in lines), start=1):  # NUL: the binary-file test
            try:
                rec = orjson.loads(ln)
            except orjson.JSONDecodeError:
                rec = None
            if isinstance(rec, dict):
                rec["_line"] = i
                ln = orjson.dumps(rec).decode()
            tagged.append(ln)
        f.write_text("\n".join(tagged) + "\n", encoding="utf-8")
        ticks = list(group_ticks(read_jsonl(f)))
        rejected = [r for t in ticks if not isinstance(t, int) for r, _ in t.rejected]
        accepted = [
            p["_line"] for t in ticks if not isinstance(t, int) for p in [r.payload for r in t.rows] + t.estimates
        ]
        rejected_lines = [int(r.split(":")[0].removeprefix("line ")) for r in rejected]
        assert len(set(accepted)) == len(accepted) and not set(accepted) & set(rejected_lines)
        for i, ln in enumerate(tagged, start=1):
            if not ln.strip():
                continue
            rec = orjson.loads(ln) if i not in rejected_lines and i not in accepted else None
            if rec is not None:  # neither rejected nor in a tick: only start and market records are silent
                assert rec.get("type") in ("start", "market"), (i, ln)
        clock = [t.ts for t in ticks if not isinstance(t, int)]
        assert clock == sorted(clock) and all(MIN_TS <= ts < MAX_TS for ts in clock)
        # and through the engine: every row validated and stored or rejected, nothing raises
        store = Store(Path(d) / "r.db")
        try:
            source = ReplaySource(iter(ticks))
            engine = Engine(store, source, [ReplayEstimator(source)], EngineConfig())
            while source.has_next():
                engine.tick()
            stored = store.db.execute_sql("SELECT COUNT(*) FROM rejected_rows").fetchone()[0]
            assert stored >= len(rejected)
        finally:
            store.close()


# -- 5. files: crash logs and owner-only files ---------------------------------------------------
def test_crash_log_never_follows_a_planted_symlink_and_is_private(tmp_path, monkeypatch, capsys):
    import tempfile as tf

    monkeypatch.setattr(tf, "tempdir", str(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for s in (stamp, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + 1))):
        (tmp_path / f"kakashi-crash-{s}.log").symlink_to(victim)  # the old predictable names

    def boom(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "cmd_status", boom)
    codes = [cli.main(["status", "--db", str(tmp_path / "k.db")]) for _ in range(2)]
    err = capsys.readouterr().err
    assert codes == [70, 70] and victim.read_text() == "keep me"
    logs = [p for p in tmp_path.glob("kakashi-crash-*.log") if not p.is_symlink()]
    assert len(logs) == 2  # two crashes in one second: two files
    for p in logs:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600 and "RuntimeError: a bug" in p.read_text()
        assert str(p) in err


def test_create_private_refuses_an_existing_name_or_link(tmp_path):
    from kakashi_tui.adapters.crashlog import create_private, write_crash_log

    (tmp_path / "x").symlink_to(tmp_path / "target")
    with pytest.raises(FileExistsError):
        create_private(tmp_path / "x")
    assert not (tmp_path / "target").exists()
    old = os.umask(0)
    try:
        p = write_crash_log("t", tmp_path)
    finally:
        os.umask(old)
    assert p is not None and stat.S_IMODE(p.stat().st_mode) == 0o600
    assert write_crash_log("t", tmp_path / "missing-dir") is None


def test_reports_and_charts_are_owner_only_whatever_the_umask(tmp_path):
    from kakashi_tui.frontends.report.postmortem import export_postmortem
    from tests.conftest import make_engine

    e = make_engine(tmp_path / "k.db")
    for _ in range(30):
        e.tick()
    e.store.close()
    old = os.umask(0o022)
    try:
        out = export_postmortem(tmp_path / "k.db", tmp_path / "reports", T, charts=True)
    finally:
        os.umask(old)
    folder = out.path.parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert len(files) >= 2 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)


# -- 4. a tampered database: "corrupt database: ..." and exit 1, never exit 70 ---------------------
@pytest.fixture(scope="module")
def traded_db(tmp_path_factory):
    from tests.conftest import make_engine

    path = tmp_path_factory.mktemp("traded") / "k.db"
    e = make_engine(path)
    for _ in range(150):
        e.tick()
    e.store.close()
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'buy'").fetchone()[0] > 0
    return path


TAMPERED = [
    ("ledger-text-amount", "UPDATE ledger SET amount_cc = 'abc' WHERE id = 1", "ledger entry 1: amount_cc is 'abc'"),
    ("ledger-text-ts", "UPDATE ledger SET ts = 'x' WHERE key = 'deposit:initial'", "ledger entry 1: ts is 'x'"),
    (
        "ledger-real-contracts",
        "UPDATE ledger SET contracts_hundredths = 1.5 WHERE kind = 'buy'",
        "contracts_hundredths is '1.5'",
    ),
    ("ledger-huge-amount", "UPDATE ledger SET amount_cc = 1e300 WHERE id = 1", "amount_cc is '1e+300'"),
    (
        "ledger-unknown-kind",
        "UPDATE ledger SET kind = 'bonus' WHERE id = 1",
        "ledger entry 1: unknown kind or side ('bonus'",
    ),
    (
        "ledger-unknown-side",
        "UPDATE ledger SET side = 'maybe' WHERE kind = 'buy'",
        "unknown kind or side ('buy', 'maybe')",
    ),
    ("ledger-no-side", "UPDATE ledger SET side = NULL WHERE kind = 'buy'", "a buy entry without a side"),
    (
        "ledger-oversold",
        "UPDATE ledger SET contracts_hundredths = -99999900 WHERE kind IN ('settle', 'sell')",
        "its hash does not match its content and the entry before it",
    ),
]


TAMPERED_CONTROL = [
    (
        "control-text-seed",
        "UPDATE control SET value = 'abc' WHERE key = 'sim_seed'",
        "control row 'sim_seed': value 'abc'",
    ),
    (
        "control-text-equity",
        "UPDATE control SET value = 'x' WHERE key = 'day_start_equity'",
        "control row 'day_start_equity': value 'x' is not a whole number",
    ),
    (
        "control-huge-tick",
        "UPDATE control SET value = '99999999999999999999' WHERE key = 'sim_tick'",
        "control row 'sim_tick': value '99999999999999999999' is not a whole number",
    ),
    (
        "control-bool",
        "INSERT OR REPLACE INTO control VALUES ('kill_switch', 'yes')",
        "control row 'kill_switch': value 'yes'",
    ),
    ("control-blob", "UPDATE control SET value = x'00ff' WHERE key = 'tick_count'", "control row 'tick_count': value"),
    ("control-unknown-key", "INSERT INTO control VALUES ('bogus', '1')", "control row 'bogus': unknown key"),
]


def tampered_copy(traded_db: Path, tmp_path: Path, *sql: str) -> Path:
    """A copy of the traded database with each statement applied (each must change a row)."""
    import shutil

    db = tmp_path / "t.db"
    shutil.copy(traded_db, db)
    c = sqlite3.connect(db)
    try:
        for q in sql:
            assert c.execute(q).rowcount > 0, q
        c.commit()
    finally:
        c.close()  # the last connection: the change is in the main file, the WAL gone
    return db


@pytest.mark.parametrize(
    "name, sql, expected", TAMPERED + TAMPERED_CONTROL, ids=[t[0] for t in TAMPERED + TAMPERED_CONTROL]
)
def test_a_tampered_ledger_or_control_row_is_a_corrupt_database_exit_1(
    traded_db, tmp_path, capsys, name, sql, expected
):
    db = tampered_copy(traded_db, tmp_path, sql)
    before = db.read_bytes()
    commands = [
        ("status",),
        ("run", "--headless", "--ticks", "1"),
        ("report", "--out", str(tmp_path / "rep"), "--no-charts"),
    ]
    if name.startswith("control"):
        commands.append(("rearm", "--yes"))
    for args in commands:
        code, out, err = run_cli(capsys, *args, "--db", str(db))
        line = one_line(err)
        assert code == 1 and line.startswith("kakashi: error: corrupt database: ") and expected in line, (args, line)
    assert db.read_bytes() == before  # nothing written
    # replay --from-db: it replays the data (a corrupt ledger is not read) or refuses in one line
    code, out, err = run_cli(capsys, "replay", "--from-db", str(db), "--db", str(tmp_path / "r.db"))
    assert code in (0, 1) and "internal error" not in err and "Traceback" not in err


def test_a_tampered_estimate_or_snapshot_is_a_corrupt_database_exit_1(traded_db, tmp_path, capsys):
    db = tampered_copy(
        traded_db, tmp_path, "UPDATE estimates SET p_hat = 'x'", "UPDATE snapshots SET book = '{not json'"
    )
    code, out, err = run_cli(capsys, "run", "--headless", "--ticks", "1", "--db", str(db))
    assert code == 1 and "corrupt database: estimates row (latest)" in one_line(err)
    s = Store(db)
    try:
        ticker = s.db.execute_sql("SELECT ticker FROM snapshots LIMIT 1").fetchone()[0]
        with pytest.raises(Exception, match="corrupt database: snapshots row") as e:
            s.latest_snapshot(ticker)
        assert e.value.exit_code == 1
    finally:
        s.close()


@pytest.mark.parametrize(
    "sql, reason",
    [
        ("UPDATE snapshots SET book = '{not json' WHERE id = 1", "snapshot yes_bids: Input should be a valid tuple"),
        ("UPDATE snapshots SET yes_bid_cc = 'abc' WHERE id = 1", "snapshot yes_bid: Input should be a valid decimal"),
        (
            "UPDATE snapshots SET yes_bid_cc = 1e308 * 10 WHERE id = 1",
            "snapshot yes_bid: Input should be a finite number",
        ),
        ("UPDATE snapshots SET ts = 'x' WHERE id = 1", "snapshot record without an integer ts"),
        ("UPDATE estimates SET p_hat = 'x' WHERE id = 1", "estimate p_hat: Input should be a valid decimal"),
    ],
)
def test_replay_from_a_tampered_database_rejects_the_row_with_its_reason(traded_db, tmp_path, capsys, sql, reason):
    db = tampered_copy(traded_db, tmp_path, sql)
    code, out, err = run_cli(capsys, "replay", "--from-db", str(db), "--db", str(tmp_path / "r.db"))
    assert code == 0 and "rejected rows 1 " in out, (out, err)
    with sqlite3.connect(tmp_path / "r.db") as c:
        assert reason in c.execute("SELECT reason FROM rejected_rows").fetchone()[0]


def test_database_wal_and_shm_are_owner_only_whatever_the_old_modes(tmp_path):
    from tests.conftest import make_engine

    db = tmp_path / "k.db"
    e = make_engine(db)
    e.tick()
    e.store.close()
    old = os.umask(0o022)
    try:
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if not p.exists():
                p.touch()
            p.chmod(0o644)  # as an older Kakashi or a copy left them
        s = Store(db)
        try:
            s.db.execute_sql("SELECT COUNT(*) FROM ledger").fetchone()
            for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        finally:
            s.close()
        reader = Store(db, writer=False)  # `kakashi status` too
        reader.close()
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("UPDATE decisions SET ev = 'x' WHERE id IN (SELECT decision_id FROM fills)", "decision ev is 'x'"),
        ("UPDATE estimates SET p_hat = 'x'", "p_hat is 'x', not a number"),
        ("UPDATE outcomes SET ts = 'x'", "ts is 'x', not a time in epoch ms"),
        ("UPDATE fills SET ts = 'x' WHERE id = 1", "fills row 1"),
        ("UPDATE snapshots SET yes_bid_cc = 'abc'", ""),  # read only where a figure needs it: never a crash
    ],
    ids=["decision-ev", "estimate-p-hat", "outcome-ts", "fill-ts", "snapshot-price"],
)
def test_the_report_reads_every_row_it_uses_checked_never_exit_70(traded_db, tmp_path, capsys, sql, expected):
    """#20 item 6: rows another tool wrote make the report say `corrupt database`, never crash
    (on the old code a text ev or p_hat exited 70 with a TypeError)."""
    db = tampered_copy(traded_db, tmp_path, sql)
    code, _out, err = run_cli(capsys, "report", "--db", str(db), "--out", str(tmp_path / "rep"), "--no-charts")
    if code:
        line = one_line(err)
        assert code == 1 and line.startswith("kakashi: error: corrupt database: ") and expected in line, line
    else:
        assert expected == "" and "Traceback" not in err
