"""Kakashi against a Kalshi-compatible server on 127.0.0.1 that answers in today's shapes, with faults.

The engine tests here go through the engine's validator: they assert what the raw-row contract
(adapters/source.py) promises end to end.
"""

import os
from decimal import Decimal

import pytest

from kakashi_tui.adapters.kalshi.auth import signer_from
from kakashi_tui.adapters.kalshi.client import KalshiClient, KalshiHTTPError
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.adapters.source import Estimator
from kakashi_tui.adapters.store.schema import MarketRow, RejectedRow, SnapshotRow
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.testing.fake_kalshi import LIFECYCLE, FakeKalshi, FakeKalshiServer, make_test_key
from kakashi_tui.trading.engine import Engine, EngineConfig
from tests.clirun import ENV, in_process

KEY_ID = "loopback-key"


@pytest.fixture
def kalshi():
    with FakeKalshiServer(FakeKalshi.with_markets(12)) as srv:
        yield srv


@pytest.fixture
def keyed(tmp_path):
    """A server whose order books need a signature made with a throwaway key (0600 in tmp)."""
    path, pub = make_test_key(tmp_path)
    st = FakeKalshi.with_markets(12, public_key=pub, key_id=KEY_ID, page_size=100, combos=3000)
    st.lifecycle_zoo()
    with FakeKalshiServer(st) as srv:
        srv.key_path = path
        yield srv


def client(srv, **kw):
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("timeout", 2.0)
    kw.setdefault("reads_per_s", 500)
    return KalshiClient(base_url=srv.base_url, **kw)


def signed_client(srv, **kw):
    signer, _ = signer_from(KEY_ID, srv.key_path, env={})
    return client(srv, signer=signer, **kw)


# -- transport ----------------------------------------------------------------------------------
def test_pages_markets_over_http(kalshi):
    with client(kalshi) as c:
        rows = list(c.iter_markets(limit=1000))
    assert len(rows) == 12 and len({r["ticker"] for r in rows}) == 12
    pages = [p for m, p in kalshi.state.requests if p.startswith("/trade-api/v2/markets?")]
    assert len(pages) == 3  # 5 + 5 + 2
    assert {m for m, _ in kalshi.state.requests} == {"GET"}


def test_repeated_cursor_stops(kalshi):
    kalshi.state.repeat_cursor = True
    with client(kalshi) as c:
        rows = list(c.iter_markets())
    assert len(rows) == 10  # page 1, page 2, then the repeated cursor ends it


@pytest.mark.parametrize("fault", ["429", "500", "502", "503", "drop", "slow"])
def test_each_transient_fault_is_retried(kalshi, fault):
    kalshi.state.slow_seconds = 1.5
    kalshi.state.fail_next(fault)
    with client(kalshi, timeout=0.5) as c:
        m = c.get_market("KXFAKE-26JAN05-T03")
    assert m["ticker"] == "KXFAKE-26JAN05-T03" and c.retries_made == 1


def test_retry_after_is_honoured(kalshi):
    slept = []
    kalshi.state.fail_next("429-retry-after")
    with client(kalshi, sleep=slept.append) as c:
        c.get_market("KXFAKE-26JAN05-T03")
    assert slept == [1.0]


def test_retries_are_bounded(kalshi):
    kalshi.state.fail_next(*["503"] * 6)
    with client(kalshi, max_retries=2) as c:
        with pytest.raises(KalshiHTTPError, match="gave up after 3 attempts"):
            c.get_market("KXFAKE-26JAN05-T03")
    assert len(kalshi.state.requests) == 3


def test_malformed_json_and_404_are_clear_errors(kalshi):
    kalshi.state.fail_next("malformed-json")
    with client(kalshi) as c:
        with pytest.raises(KalshiHTTPError, match="malformed JSON"):
            list(c.iter_markets())
        with pytest.raises(KalshiHTTPError, match="404"):
            c.get_market("NOPE")


@pytest.mark.parametrize(
    "fault,said",
    [
        ("gzip-garbage", "undecodable"),
        ("deep-json", "malformed JSON"),
        ("html-200", "HTML"),
        ("huge-body", "larger than"),
        ("malformed-json", "malformed JSON"),
    ],
)
def test_a_hostile_body_is_one_feed_error_and_the_feed_goes_on(kalshi, fault, said):
    kalshi.state.huge_body_bytes = 3_000_000
    kalshi.state.fail_next(fault)
    with client(kalshi, max_body_bytes=2_000_000) as c:
        src = KalshiSource(c)
        bad, good = src.fetch(), src.fetch()
    assert bad.rows == [] and len(bad.errors) == 1 and said in bad.errors[0]
    assert len(good.rows) == 12 and not good.errors


# -- today's shapes over the wire ----------------------------------------------------------------
def test_every_valid_market_is_a_row_no_combo_is_downloaded_hostile_rows_rejected_alone(keyed):
    keyed.state.bad_rows = {
        "volume-1e30",
        "close-time-1e30",
        "surrogate-ticker",
        "nul-ticker",
        "long-ticker",
        "traversal-ticker",
        "dict-ticker",
        "null-row",
        "number-row",
        "string-row",
        "legacy-mismatch",
        "legacy-garbage",
    }
    with signed_client(keyed) as c:
        b = KalshiSource(c).fetch()
    assert not b.errors
    good = {r.market["ticker"]: r for r in b.rows if r.reason is None}
    active = {m.ticker for m in keyed.state.markets if m.status == "active"}
    assert set(good) == active
    rejected = [r.reason for r in b.rows if r.reason]
    assert len(rejected) == 12
    for fragment in (
        "volume_fp out of range",
        "close_time out of range",
        "U+D800",
        "U+0000",
        "too long",
        "U+002F",
        "ticker is not text",
        "got null",
        "got int",
        "got str",
        "inconsistent yes_bid",
    ):
        assert any(fragment in r for r in rejected), fragment
    listings = [p for _, p in keyed.state.requests if p.startswith("/trade-api/v2/markets?")]
    assert listings and all("mve_filter=exclude" in p for p in listings)
    assert not any(t.startswith("KXMVE") for t in good)
    assert len(listings) == 1  # 3,000 combo markets exist; one page of real ones came down
    # exact strings, sub-penny and quiet included
    assert good["KXZOO-26JAN05-TAIL"].snapshot["yes_bid"] == "0.0030"
    assert good["KXZOO-26JAN05-HIGH"].snapshot["yes_bid"] == "0.9930"
    quiet = good["KXZOO-26JAN05-QUIET"].snapshot
    assert quiet["yes_bid"] is None and quiet["yes_ask"] is None
    assert good["KXZOO-26JAN05-TAIL"].market["fee_multiplier"] == "0.5"
    assert good["KXFAKE-26JAN05-T00"].market["fee_multiplier"] == "1"
    assert good["KXFAKE-26JAN05-T00"].market["series"] == "KXFAKE"
    assert good["KXSCAL-26JAN05-S1"].market["market_type"] == "scalar"


def test_the_legacy_dual_field_shape_reads_the_same(keyed):
    with signed_client(keyed) as c:
        today = {r.market["ticker"]: r.snapshot for r in KalshiSource(c).fetch().rows}
    keyed.state.legacy = True
    with signed_client(keyed) as c:
        legacy = {r.market["ticker"]: r.snapshot for r in KalshiSource(c).fetch().rows}
    strip = lambda d: {t: {k: v for k, v in s.items() if k != "ts"} if s else s for t, s in d.items()}
    assert strip(today) == strip(legacy)


def test_every_lifecycle_status_and_the_scalar_settlement_reach_the_engine_as_sent(keyed):
    with signed_client(keyed) as c:
        src = KalshiSource(c, tickers=[m.ticker for m in keyed.state.markets])
        rows = {r.market["ticker"]: r.market for r in src.fetch().rows}
    assert {rows[f"KXZOO-26JAN05-{s.upper()[:4]}"]["status"] for s in LIFECYCLE} == set(LIFECYCLE)
    scalar = rows["KXSCAL-26JAN05-S2"]
    assert scalar["result"] == "scalar" and scalar["settlement_value"] == "0.6250" and scalar["fee_multiplier"] == "2"
    assert scalar["fee_type"] == "flat"


def test_books_are_signed_batched_and_verified_by_the_server(keyed):
    watch = {"KXZOO-26JAN05-TAIL", "KXFAKE-26JAN05-T02", "KXZOO-26JAN05-QUIET"}
    with signed_client(keyed) as c:
        b = KalshiSource(c, depth_for=lambda: watch).fetch()
    assert not b.errors
    books = [p for _, p in keyed.state.requests if "/orderbook" in p]
    assert len(books) == 1 and books[0].count("tickers=") == 3
    assert keyed.state.signed == ["/trade-api/v2/account/limits", "/trade-api/v2/markets/orderbooks"]
    tail = next(r.snapshot for r in b.rows if r.market["ticker"] == "KXZOO-26JAN05-TAIL")
    assert tail["yes_bids"][0] == ["0.0030", "2.50"] and tail["no_bids"][0] == ["0.9950", "4.50"]
    assert tail["yes_ask"] == "0.0050"


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_books_are_signed_with_an_rsa_or_ed25519_key_and_the_server_verifies_it(tmp_path, kind):
    path, pub = make_test_key(tmp_path, kind=kind)
    st = FakeKalshi.with_markets(4, public_key=pub, key_id=KEY_ID)
    signer, _ = signer_from(KEY_ID, path, env={})
    with FakeKalshiServer(st) as srv, client(srv, signer=signer) as c:
        b = KalshiSource(c, depth_for=lambda: {"KXFAKE-26JAN05-T01"}).fetch()
    assert not b.errors and not b.key_refused
    assert "/trade-api/v2/markets/orderbooks" in st.signed
    row = next(r for r in b.rows if r.market["ticker"] == "KXFAKE-26JAN05-T01")
    assert row.snapshot["yes_bids"]


def test_without_a_key_books_are_read_unsigned_from_a_server_that_serves_them(kalshi):
    """#22 item 7, the live exchange's behaviour: every market-data endpoint answers unsigned."""
    kalshi.state.require_signature = False
    with client(kalshi) as c:
        src = KalshiSource(c, depth_for=lambda: {"KXFAKE-26JAN05-T02"})
        b = src.fetch()
    assert not b.errors and not b.notes and not b.key_refused
    assert len(src.notices) == 1 and "no live WebSocket books" in src.notices[0]
    row = next(r for r in b.rows if r.market["ticker"] == "KXFAKE-26JAN05-T02")
    assert row.snapshot["yes_bids"] and row.snapshot["no_bids"]
    assert len([p for _, p in kalshi.state.requests if "/orderbook" in p]) == 1


def test_without_a_key_a_server_that_wants_one_for_books_is_said_once_and_the_rest_polls(keyed):
    with client(keyed) as c:
        src = KalshiSource(c, depth_for=lambda: {"KXFAKE-26JAN05-T02"})
        first, second = src.fetch(), src.fetch()
    assert not first.errors and not second.errors and not first.key_refused
    assert len([r for r in first.rows if r.reason is None]) > 10 and second.rows
    assert len([n for n in first.notes + second.notes if "a key is needed" in n]) == 1
    assert len([p for _, p in keyed.state.requests if "orderbook" in p]) == 1  # asked again only after 5 s


def test_with_a_key_the_client_paces_from_the_accounts_limits_the_server_serves(keyed):
    keyed.state.account_limits = {"usage_tier": "slow", "read": {"refill_rate": 50, "bucket_capacity": 100}}
    with signed_client(keyed) as c:
        b = KalshiSource(c).fetch()
        assert (c.bucket.rate, c.bucket.burst) == (5, 10)
    assert "Kalshi: reads paced from the account's limits (tier slow): 5 reads/s, bursts of 10" in b.notes
    assert keyed.state.signed[0] == "/trade-api/v2/account/limits"


def test_a_wrong_key_is_one_line_with_kalshis_message(keyed, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    path, _ = make_test_key(other)
    signer, _ = signer_from(KEY_ID, path, env={})
    with client(keyed, signer=signer) as c:
        src = KalshiSource(c, depth_for=lambda: {"KXFAKE-26JAN05-T02"})
        b = src.fetch()
    # The account's limits are the first signed request: refused there, nothing else signed is
    # asked until the backoff's wait is over (no retry storm).
    assert b.key_refused == "Kalshi refused the request (HTTP 401 on GET /account/limits): invalid signature"
    assert not b.errors  # a key problem, not a feed glitch
    assert len([p for _, p in keyed.state.requests if "account/limits" in p]) == 1
    assert not [p for _, p in keyed.state.requests if "orderbook" in p]


def test_after_the_first_listing_only_changes_and_watched_markets_are_asked_for(keyed):
    with signed_client(keyed) as c:
        src = KalshiSource(c, depth_for=lambda: {"KXFAKE-26JAN05-T02"})
        first = src.fetch()
        n = len(keyed.state.requests)
        target = keyed.state.market("KXFAKE-26JAN05-T05")
        target.touch(bid=Decimal("0.11"))
        second = src.fetch()
    asked = [p for _, p in keyed.state.requests[n:]]
    assert len(asked) <= 4, asked  # changes, the believed market, its book
    assert any("min_updated_ts=" in p for p in asked)
    ts1 = {r.market["ticker"]: r.snapshot["ts"] for r in first.rows if r.snapshot}
    ts2 = {r.market["ticker"]: r.snapshot for r in second.rows if r.snapshot}
    # only what changed is handed over again: the changed market and the believed one, re-listed
    assert set(ts2) == {"KXFAKE-26JAN05-T05", "KXFAKE-26JAN05-T02"}
    assert ts2["KXFAKE-26JAN05-T05"]["yes_bid"] == "0.1100"
    assert src.cache["KXFAKE-26JAN05-T00"].ts == ts1["KXFAKE-26JAN05-T00"]  # unchanged: its old quote time


def test_a_held_market_archived_past_the_cutoff_is_read_from_historical(keyed):
    m = keyed.state.market("KXZOO-26JAN05-FINA")
    m.archived = True
    with signed_client(keyed) as c:
        src = KalshiSource(c, watch_for=lambda: {m.ticker})
        rows = {r.market["ticker"]: r for r in src.fetch().rows}
    assert rows[m.ticker].market["status"] == "finalized" and rows[m.ticker].market["result"] == "yes"
    assert any(p.startswith("/trade-api/v2/historical/markets/KXZOO-26JAN05-FINA") for _, p in keyed.state.requests)


# -- through the engine and the CLI ---------------------------------------------------------------
def test_bad_rows_rejected_with_reasons_good_rows_stored(kalshi, tmp_path):
    kalshi.state.bad_rows = {"ask-below-bid", "price-over-1", "missing-ticker", "settled-no-result"}
    store = Store(tmp_path / "k.db")
    with client(kalshi) as c:
        engine = Engine(store, KalshiSource(c), [], EngineConfig())
        rep = engine.tick()
    assert rep.saved == 12 and rep.rejected == 4
    assert SnapshotRow.select().count() == 12
    assert SnapshotRow.select().where(SnapshotRow.ticker.in_(["KXBAD-ASKBID", "KXBAD-PRICE"])).count() == 0
    store.close()


def test_every_valid_market_is_saved_nothing_valid_rejected(keyed, tmp_path):
    store = Store(tmp_path / "k.db")
    with signed_client(keyed) as c:
        engine = Engine(store, KalshiSource(c, depth_for=lambda: {"KXZOO-26JAN05-TAIL"}), [], EngineConfig())
        rep = engine.tick()
    active = [m for m in keyed.state.markets if m.status == "active"]
    assert rep.rejected == 0 and RejectedRow.select().count() == 0
    assert MarketRow.select().count() == len(active)
    assert rep.saved >= len(active) - 1  # the quiet market may be stored as "no quote" or skipped
    store.close()


def test_loop_keeps_ticking_through_an_outage(kalshi, tmp_path):
    store = Store(tmp_path / "k.db")
    with client(kalshi, max_retries=1) as c:
        engine = Engine(store, KalshiSource(c), [], EngineConfig())
        first = engine.tick()
        kalshi.state.fail_next("503", "503")
        outage = engine.tick()
        moved = kalshi.state.markets[0]
        moved.touch(bid=Decimal("0.2000"))  # one market moves while the feed is down
        back = engine.tick()
    assert first.saved == 12 and not first.errors
    assert outage.saved == 0 and "503" in outage.errors[0] and "feed errors 1" in outage.log_line()
    # Back: the market that moved is a new quote; the eleven that did not are not stored again.
    assert back.saved == 1 and not back.errors and engine.tick_count == 3
    assert engine.quotes[moved.ticker].yes_bid == Decimal("0.2000")
    store.close()


def fast_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[kalshi]\ntimeout_s = 1.0\nmax_retries = 1\nbackoff_base_s = 0.01\nreads_per_s = 200\n")
    return str(cfg)


def test_snapshot_command_against_the_server(capfd, kalshi, tmp_path):
    kalshi.state.bad_rows = {"missing-ticker"}
    p = in_process(
        capfd,
        "snapshot",
        "--source",
        "kalshi",
        "--api-base",
        kalshi.base_url,
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        fast_config(tmp_path),
        "--strict",
    )
    assert p.returncode == 0, p.stderr
    assert sum(1 for ln in p.stdout.splitlines() if ln.startswith("Snapshot saved for KXFAKE-")) == 12
    assert p.stdout.splitlines()[-1] == "snapshot: 12 saved, 1 rejected from kalshi"


@pytest.mark.parametrize("fault", ["gzip-garbage", "deep-json", "html-200", "huge-body", "malformed-json"])
def test_snapshot_never_exits_70_on_a_hostile_body(capfd, kalshi, tmp_path, fault):
    kalshi.state.huge_body_bytes = 17 * 1024 * 1024
    kalshi.state.fail_next(fault, fault)
    p = in_process(
        capfd,
        "snapshot",
        "--source",
        "kalshi",
        "--api-base",
        kalshi.base_url,
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        fast_config(tmp_path),
        "--strict",
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) <= 2 and "Kalshi API unreachable" in p.stderr


def test_snapshot_with_hostile_rows_never_exits_70(capfd, kalshi, tmp_path):
    kalshi.state.bad_rows = {
        "volume-1e30",
        "close-time-1e30",
        "surrogate-ticker",
        "nul-ticker",
        "long-ticker",
        "traversal-ticker",
        "dict-ticker",
        "null-row",
        "number-row",
        "string-row",
    }
    p = in_process(
        capfd,
        "snapshot",
        "--source",
        "kalshi",
        "--api-base",
        kalshi.base_url,
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        fast_config(tmp_path),
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert not any("portfolio" in path for _, path in kalshi.state.requests)
    db = Store(tmp_path / "k.db")
    reasons = [r.reason for r in RejectedRow.select()]
    db.close()
    assert sum(1 for r in reasons if "ticker" in r or "not an object" in r or "out of range" in r) >= 10


def test_snapshot_signs_book_requests_with_a_key_from_the_environment(capfd, keyed, tmp_path):
    beliefs = tmp_path / "b.csv"
    beliefs.write_text("ticker,p_hat\nKXZOO-26JAN05-TAIL,0.5\nKXFAKE-26JAN05-T02,0.9\n")
    env = {**ENV, "KAKASHI_KALSHI_KEY_ID": KEY_ID, "KAKASHI_KALSHI_KEY_FILE": keyed.key_path}
    p = in_process(
        capfd,
        "snapshot",
        "--source",
        "kalshi",
        "--api-base",
        keyed.base_url,
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        fast_config(tmp_path),
        "--beliefs",
        str(beliefs),
        env=env,
    )
    assert p.returncode == 0, p.stderr
    assert keyed.state.signed == ["/trade-api/v2/account/limits", "/trade-api/v2/markets/orderbooks"]
    assert KEY_ID not in p.stdout + p.stderr and "API key" not in p.stderr
    assert not any("KXMVE" in path for _, path in keyed.state.requests)


def test_without_a_key_the_engine_runtime_builds_a_source_that_says_why(kalshi, tmp_path):
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import Options, build_engine

    cfg = load_config(fast_config(tmp_path))
    engine = build_engine(Options(source="kalshi", api_base=kalshi.base_url, db=str(tmp_path / "k.db")), cfg)
    try:
        assert len(engine.source.notices) == 1 and "no API key" in engine.source.notices[0]
        assert not engine.source.client.signed
    finally:
        engine.source.close()
        engine.store.close()


def test_a_key_file_others_can_read_is_refused_at_start(capfd, keyed, tmp_path):
    os.chmod(keyed.key_path, 0o644)
    env = {**ENV, "KAKASHI_KALSHI_KEY_ID": KEY_ID, "KAKASHI_KALSHI_KEY_FILE": keyed.key_path}
    p = in_process(
        capfd,
        "snapshot",
        "--source",
        "kalshi",
        "--api-base",
        keyed.base_url,
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        fast_config(tmp_path),
        env=env,
    )
    assert p.returncode == 2 and "chmod 600" in p.stderr and "Traceback" not in p.stderr
    assert KEY_ID not in p.stderr


def test_a_key_of_another_kind_is_refused_at_start_in_one_line(capfd, kalshi, tmp_path):
    path, _ = make_test_key(tmp_path, kind="ec")
    env = {**ENV, "KAKASHI_KALSHI_KEY_ID": KEY_ID, "KAKASHI_KALSHI_KEY_FILE": path}
    p = in_process(
        capfd, "snapshot", "--source", "kalshi", "--api-base", kalshi.base_url, "--db", str(tmp_path / "k.db"), env=env
    )
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "does not hold an RSA or Ed25519 private key" in lines[0] and KEY_ID not in p.stderr
    assert not kalshi.state.requests  # refused before anything was asked


def test_headless_loop_against_the_server_through_faults(capfd, kalshi, tmp_path):
    kalshi.state.fail_next("503", "503", "drop", "drop")
    p = in_process(
        capfd,
        "run",
        "--headless",
        "--source",
        "kalshi",
        "--api-base",
        kalshi.base_url,
        "--ticks",
        "4",
        "--interval",
        "0",
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        fast_config(tmp_path),
    )
    assert p.returncode == 0, p.stderr
    ticks = [ln for ln in p.stdout.splitlines() if ln.startswith("tick ")]
    assert len(ticks) == 4
    assert "feed errors 1" in ticks[0] and "feed errors 1" in ticks[1]
    # Back after the faults: every market stored once; unchanged quotes are not stored again.
    assert "saved 12" in ticks[2] and "saved 0 " in ticks[3] and "feed errors" not in ticks[3]
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "mode",
    [
        "live",  # #22 item 7: books served unsigned, as Kalshi does
        "no-batch",  # #22 item 6: an older server without GET /markets/orderbooks (404)
        "3.20",  # a server in spec 3.20's shapes (the fields removed since, none added)
    ],
)
def test_a_run_without_a_key_makes_paper_fills_within_its_first_ticks(capfd, kalshi, tmp_path, mode):
    """`kakashi run --source kalshi` without a key, against a server that serves books unsigned
    (as Kalshi does), makes paper fills within its first ticks."""
    st = kalshi.state
    st.require_signature = False
    st.batch_books = mode != "no-batch"
    st.spec = "3.20" if mode == "3.20" else "3.34"
    beliefs = tmp_path / "b.csv"
    beliefs.write_text("ticker,p_hat\nKXFAKE-26JAN05-T00,0.99\nKXFAKE-26JAN05-T01,0.99\n")
    args = ("run", "--headless", "--source", "kalshi", "--api-base", kalshi.base_url, "--ticks", "3")
    p = in_process(
        capfd,
        *args,
        "--interval",
        "0",
        "--beliefs",
        str(beliefs),
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        fast_config(tmp_path),
    )
    assert p.returncode == 0, p.stderr
    ticks = [ln for ln in p.stdout.splitlines() if ln.startswith("tick ")]
    assert len(ticks) == 3 and "feed errors" not in p.stdout, p.stdout
    fills = sum(int(ln.split(" fills ")[1].split()[0]) for ln in ticks)
    assert fills >= 1, p.stdout
    assert "no live WebSocket books" in p.stderr and "Traceback" not in p.stderr
    assert not st.signed and not st.accept_language  # nothing signed (no key); no language asked for
    books = [path for _, path in st.requests if "/orderbook" in path]
    if mode == "no-batch":
        assert "one market at a time" in p.stdout + p.stderr
        assert any(path.startswith("/trade-api/v2/markets/KXFAKE-26JAN05-T00/orderbook") for path in books)


def test_without_the_batch_endpoint_books_come_one_by_one_held_first_and_paced(kalshi):
    """#22 item 6: a 404 on GET /markets/orderbooks: each market's own book, at most half an
    interval's reads a fetch, held markets first, the rest in turn; said once, never an error."""
    st = kalshi.state
    st.require_signature, st.batch_books = False, False
    believed = {m.ticker for m in st.markets}
    with client(kalshi, reads_per_s=20) as c:  # 1 s x 20 reads/s / 2 = 10 books a fetch
        src = KalshiSource(c, depth_for=lambda: believed, watch_for=lambda: {"KXFAKE-26JAN05-T11"}, interval_s=1.0)
        first, second = src.fetch(), src.fetch()
    for b in (first, second):
        assert not b.errors and len([r for r in b.rows if r.snapshot and r.snapshot.get("yes_bids")]) == 10
    assert len([n for n in first.notes + second.notes if "one market at a time" in n]) == 1
    booked = [
        {r.market["ticker"] for r in b.rows if r.snapshot and r.snapshot.get("yes_bids")} for b in (first, second)
    ]
    assert all("KXFAKE-26JAN05-T11" in s for s in booked)  # the held market every fetch
    assert booked[0] | booked[1] == believed  # the rest in turn


def test_the_18_mb_series_listing_is_read_whole_not_looked_up_one_by_one(kalshi):
    """#22 item 8: GET /series has no pages and is about 18 MB (14,000 series), over the 16 MB
    body cap: it used to fail and fall back to a look-up per series."""
    kalshi.state.bulk_series = 14_000
    assert len(kalshi.state.series_body()) > 16 * 1024 * 1024
    with client(kalshi, timeout=30.0) as c:
        src = KalshiSource(c)
        b = src.fetch()
    assert not b.errors and not [n for n in b.notes if "one by one" in n], b.notes
    assert len(src.series_fees) == 14_001
    one_by_one = [p for _, p in kalshi.state.requests if p.startswith("/trade-api/v2/series/")]
    assert not [p for p in one_by_one if p != "/trade-api/v2/series/fee_changes"]  # (a listing of its own)


def test_a_held_market_that_closes_is_still_fetched_until_it_settles(keyed, tmp_path):
    """The open-markets listing drops a market when it closes; the position in it must still be
    marked and, once Kalshi settles it, paid out."""
    from kakashi_tui.adapters.store.schema import LedgerRow
    from kakashi_tui.core.models import Estimate

    target = keyed.state.market("KXFAKE-26JAN05-T00")

    class Bullish(Estimator):  # a belief well above the ask, for one market
        def estimates(self, tickers, now_ms):
            return [
                Estimate(ticker=t, p_hat=Decimal("0.99"), source="test", ts=now_ms)
                for t in tickers
                if t == target.ticker
            ]

    store = Store(tmp_path / "k.db")
    with signed_client(keyed) as c:
        source = KalshiSource(c, depth_for=lambda: {target.ticker})
        # (filled at its decision, insert_latency_ms = 0: a later order would meet the closed market)
        engine = Engine(
            store, source, [Bullish()], EngineConfig(insert_latency_ms=0)
        )  # (hands the source its held markets)
        first = engine.tick()
        assert first.fills == 1 and engine.held_tickers() == {target.ticker}
        target.touch(status="closed")
        closed = engine.tick()
        assert not closed.errors
        assert MarketRow.get(MarketRow.ticker == target.ticker).status == "closed"
        target.touch(status="finalized", result="yes")
        settled = engine.tick()
    assert settled.settled == 1 and engine.held_tickers() == set()
    assert LedgerRow.select().where(LedgerRow.kind == "settle").count() == 1
    store.close()


def test_an_operators_ticker_list_still_includes_what_is_held(kalshi):
    with client(kalshi) as c:
        source = KalshiSource(c, tickers=["KXFAKE-26JAN05-T01"])
        source.watch(lambda: {"KXFAKE-26JAN05-T05"})
        rows = source.fetch().rows
    assert sorted(r.market["ticker"] for r in rows) == ["KXFAKE-26JAN05-T01", "KXFAKE-26JAN05-T05"]


def test_a_key_in_the_config_signs_book_requests(keyed, tmp_path):
    from kakashi_tui.trading.config import load_config
    from kakashi_tui.trading.runtime import Options, build_engine

    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(
        f'[kalshi]\napi_key_id = "{KEY_ID}"\nprivate_key_file = "{keyed.key_path}"\n'
        "timeout_s = 1.0\nreads_per_s = 200\n"
    )
    cfg_path.chmod(0o600)
    beliefs = tmp_path / "b.csv"
    beliefs.write_text("ticker,p_hat\nKXFAKE-26JAN05-T02,0.9\n")
    opts = Options(source="kalshi", api_base=keyed.base_url, db=str(tmp_path / "k.db"), beliefs=str(beliefs))
    engine = build_engine(opts, load_config(str(cfg_path)))
    try:
        polled = engine.source.polled  # (with a key, the WebSocket's books over the polled source)
        assert polled.client.signed and polled.notices == []
        assert polled.client.reads_cap == 200  # set in the config: the account's budget never goes past it
        batch = engine.source.fetch()
    finally:
        engine.source.close()
        engine.store.close()
    assert not batch.errors
    assert keyed.state.signed == ["/trade-api/v2/account/limits", "/trade-api/v2/markets/orderbooks"]
    assert KEY_ID not in repr(polled.client)


def test_a_bad_ticker_argument_is_one_line_and_exit_2(capfd, kalshi, tmp_path):
    p = in_process(
        capfd,
        "snapshot",
        "--source",
        "kalshi",
        "--api-base",
        kalshi.base_url,
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        fast_config(tmp_path),
        "--ticker",
        "KX/../../portfolio/orders",
    )
    assert p.returncode == 2 and "not a name Kalshi could list" in p.stderr and "Traceback" not in p.stderr
    assert kalshi.state.requests == []


def test_the_headless_loop_keeps_ticking_through_hostile_rows(capfd, kalshi, tmp_path):
    kalshi.state.bad_rows = {
        "volume-1e30",
        "close-time-1e30",
        "surrogate-ticker",
        "nul-ticker",
        "long-ticker",
        "traversal-ticker",
        "dict-ticker",
        "null-row",
        "number-row",
        "string-row",
    }
    p = in_process(
        capfd,
        "run",
        "--headless",
        "--source",
        "kalshi",
        "--api-base",
        kalshi.base_url,
        "--ticks",
        "3",
        "--interval",
        "0",
        "--db",
        str(tmp_path / "k.db"),
        "--config",
        fast_config(tmp_path),
    )
    assert p.returncode == 0, p.stderr
    assert len([ln for ln in p.stdout.splitlines() if ln.startswith("tick ")]) == 3
    assert "Traceback" not in p.stderr
    assert not any("portfolio" in path for _, path in kalshi.state.requests)


def test_when_a_watched_market_cannot_be_listed_again_its_quote_keeps_its_old_time(kalshi):
    now = [1_800_000_000_000]
    target = "KXFAKE-26JAN05-T03"
    with client(kalshi, max_retries=0) as c:
        src = KalshiSource(c, depth_for=lambda: {target}, clock=lambda: now[0])
        src.fetch()
        now[0] += 120_000
        kalshi.state.fail_next("ok", "503")  # the changes answer; the re-listing of the watched market fails
        b = src.fetch()
    assert any("503" in e for e in b.errors)
    # not sent again: the engine decides on the quote it keeps, whose time is the old one
    assert target in b.same and not [r for r in b.rows if r.market["ticker"] == target]
    assert src.cache[target].ts == 1_800_000_000_000


def test_the_stale_quote_guard_fires_on_a_real_old_kalshi_quote(kalshi, tmp_path):
    from kakashi_tui.core.models import Estimate

    now = [int(__import__("time").time() * 1000)]
    target = kalshi.state.markets[3].ticker

    class LateBelief(Estimator):  # a large edge, from the second tick on
        def estimates(self, tickers, now_ms):
            return [Estimate(ticker=target, p_hat=Decimal("0.99"), source="test", ts=now_ms)] if tick[0] > 1 else []

    tick = [0]
    store = Store(tmp_path / "k.db")
    with client(kalshi, max_retries=0) as c:
        src = KalshiSource(c, depth_for=lambda: {target}, clock=lambda: now[0])
        engine = Engine(store, src, [LateBelief()], EngineConfig())
        tick[0] = 1
        engine.tick()
        now[0] += 120_000
        tick[0] = 2
        kalshi.state.fail_next("ok", "503")
        rep = engine.tick()
    assert rep.fills == 0
    assert any("stale quote" in d.reason for d in rep.decisions)
    store.close()
