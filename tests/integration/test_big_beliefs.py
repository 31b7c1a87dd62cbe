"""A beliefs file of 200,000 lines (issue #20, item 4) on the loopback Kalshi server: a fetch
refreshes at most what the client's rate serves in an interval, the rest in turn, and says so
once. Before, every fetch re-listed every believed market by ticker (2,000 requests: a tick of
about 100 s at 20 reads/s)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from kakashi_tui.adapters.kalshi.auth import signer_from
from kakashi_tui.adapters.kalshi.client import KalshiClient
from kakashi_tui.adapters.kalshi.source import KalshiSource, believed_budget
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, make_test_key
from tests.clirun import ENV, in_process

KEY_ID = "test-key-id"
BIG = 200_000


@pytest.fixture
def keyed(tmp_path):
    path, pub = make_test_key(tmp_path)
    # (no GET /account/limits: the client keeps the pace these tests give it)
    st = FakeKalshi.with_markets(12, public_key=pub, key_id=KEY_ID, page_size=1000, account_limits=None)
    with FakeKalshiServer(st) as srv:
        srv.key_path = path
        yield srv


def believed(srv, n: int) -> set[str]:
    """The server's 12 markets and ``n - 12`` tickers it does not list (typos, markets not open),
    as long as real ones: 200,000 lines are about 6.5 MB (more than the 4 MiB allowed before)."""
    real = {m.ticker for m in srv.state.markets}
    return real | {f"KXNOTLISTED-26JAN05-T{i:06d}" for i in range(n - len(real))}


def by_ticker(srv, since: int = 0) -> list[list[str]]:
    """The tickers of each re-listing (GET /markets?tickers=...) and book request since request ``since``."""
    out = []
    for _m, p in srv.state.requests[since:]:
        q = parse_qs(urlsplit(p).query)
        if "tickers" in q:
            out.append([t for v in q["tickers"] for t in v.split(",")])
    return out


def test_the_budget_is_half_the_reads_an_interval_allows():
    assert believed_budget(5.0, 20.0) == 2_500  # 50 requests: 25 listings and 25 book requests of 100
    assert believed_budget(0.0, 20.0) == believed_budget(1.0, 20.0) == 500  # flat out: a second's worth
    assert believed_budget(0.0, 1.0) == 100  # never less than one request's worth


def test_a_fetch_refreshes_at_most_its_share_of_200k_beliefs_and_says_so_once(keyed):
    tickers = believed(keyed, BIG)
    real = {m.ticker for m in keyed.state.markets}
    signer, _ = signer_from(KEY_ID, keyed.key_path, env={})
    with KalshiClient(base_url=keyed.base_url, signer=signer, reads_per_s=5_000, backoff_base=0.01) as c:
        src = KalshiSource(c, depth_for=lambda: tickers, interval_s=1.0)
        src.believed_per_fetch = 1_000  # (a fast client's budget would be 250,000: take a small one)
        notes, seen_unknown = [], set()
        for i in range(5):
            before = len(keyed.state.requests)
            b = src.fetch()
            assert not b.errors, b.errors
            notes += [n for n in b.notes if n.startswith("beliefs:")]
            asked = by_ticker(keyed, before)
            refreshed = {t for chunk in asked for t in chunk}
            assert len(asked) <= 1_000 // 100 + 1 + 1, len(asked)  # its listings, one book request (+ held)
            assert real <= refreshed  # the markets Kalshi lists are refreshed every fetch
            fresh = refreshed - real
            assert not fresh & seen_unknown  # the rest in turn: none twice before all once
            seen_unknown |= fresh
            books = {r.market["ticker"] for r in b.rows if r.reason is None and r.snapshot.get("yes_bids")}
            assert books == real, i
    assert len(seen_unknown) == 5 * (1_000 - 12)
    assert notes == [
        "beliefs: 200,000 believed markets are more than the 1,000 a fetch can refresh at 5000 reads/s "
        "every 1s; refreshed 1,000 a fetch in turn (listed markets first; each about every 200s)"
    ]


def test_a_small_belief_set_is_refreshed_whole_every_fetch_as_before(keyed):
    tickers = believed(keyed, 300)
    signer, _ = signer_from(KEY_ID, keyed.key_path, env={})
    with KalshiClient(base_url=keyed.base_url, signer=signer, reads_per_s=5_000, backoff_base=0.01) as c:
        src = KalshiSource(c, depth_for=lambda: tickers, interval_s=1.0)
        src.believed_per_fetch = 300
        src.fetch()
        before = len(keyed.state.requests)
        b = src.fetch()
    assert not [n for n in b.notes if n.startswith("beliefs:")]
    assert {t for chunk in by_ticker(keyed, before) for t in chunk} >= tickers - {m.ticker for m in keyed.state.markets}


@pytest.mark.timeout(120)  # before: about 100 s a tick
def test_a_headless_run_on_200k_beliefs_keeps_ticking(keyed, tmp_path, capfd):
    beliefs = tmp_path / "b.csv"
    lines = [f"{t},0.5" for t in sorted(believed(keyed, BIG))]
    beliefs.write_text("ticker,p_hat\n" + "\n".join(lines) + "\n")
    assert beliefs.stat().st_size > 6_000_000
    env = ENV | {"KAKASHI_KALSHI_KEY_ID": KEY_ID, "KAKASHI_KALSHI_KEY_FILE": keyed.key_path}
    t0 = time.monotonic()
    p = in_process(
        capfd,
        *("run", "--headless", "--source", "kalshi"),
        *("--api-base", keyed.base_url, "--beliefs", str(beliefs), "--interval", "0", "--ticks", "3"),
        *("--no-record", "--db", str(tmp_path / "k.db")),
        env=env,
    )
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    ticks = [ln for ln in p.stdout.splitlines() if ln.startswith("tick ")]
    assert len(ticks) == 3 and took < 60, (took, p.stdout)
    said = [ln for ln in p.stdout.splitlines() if "200,000 believed markets are more than the 500" in ln]
    assert len(said) == 1 and said[0] == ticks[0], p.stdout  # once, on the first tick's line
