"""Issue #22, "Done means", as an operator runs it: ``kakashi run --headless --source kalshi``
against the loopback REST server (3.34 shapes) and WebSocket, with a key and without one, makes
paper fills within its first ticks, records its catalog as it trades, and ``kakashi replay
--catalog`` of that recording ends at the same cash. Real processes, real files."""

from __future__ import annotations

import pytest

from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, make_test_key
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS
from tests.clirun import ENV, in_process
from tests.integration.test_columnar import cash_of
from tests.integration.test_replay import tables

KEY_ID = "operator-key"
TICKS = 4
BELIEVED = ("KXFAKE-26JAN05-T00", "KXFAKE-26JAN05-T01", "KXFAKE-26JAN05-T03")


def tick_fills(stdout: str) -> list[int]:
    return [int(ln.split(" fills ")[1].split()[0]) for ln in stdout.splitlines() if ln.startswith("tick ")]


@pytest.mark.parametrize("keyed", [False, True], ids=["without-a-key", "with-a-key"])
@pytest.mark.timeout(60)
def test_a_kalshi_run_fills_in_its_first_ticks_and_its_recording_replays_to_the_same_cash(capfd, tmp_path, keyed):
    env = dict(ENV)
    state = FakeKalshi.with_markets(6)
    ws = None
    conf = "[kalshi]\ntimeout_s = 2.0\nmax_retries = 1\nbackoff_base_s = 0.01\nreads_per_s = 500\n"
    if keyed:  # signed books; the WebSocket (which wants the key) streams the believed markets' books
        path, state.public_key = make_test_key(tmp_path, KEY_ID)
        state.key_id = KEY_ID
        env.update(KAKASHI_KALSHI_KEY_ID=KEY_ID, KAKASHI_KALSHI_KEY_FILE=path)
        ws = FakeKalshiWS(BELIEVED[:2], interval=0.005)
        ws.require_key = True
        ws.start()
        conf += f'ws_url = "{ws.url}"\n'
    else:  # the live exchange serves books unsigned
        state.require_signature = False
    cfg = tmp_path / "c.toml"
    cfg.write_text(conf)
    beliefs = tmp_path / "b.csv"
    beliefs.write_text("ticker,p_hat\n" + "".join(f"{t},0.99\n" for t in BELIEVED))
    db, catalog = tmp_path / "live.db", tmp_path / "catalog"
    try:
        with FakeKalshiServer(state) as rest:
            p = in_process(
                capfd,
                *("run", "--headless", "--source", "kalshi", "--api-base", rest.base_url),
                *("--ticks", str(TICKS), "--interval", "0", "--beliefs", str(beliefs)),
                *("--db", str(db), "--config", str(cfg), "--catalog", str(catalog)),
                env=env,
            )
    finally:
        if ws is not None:
            ws.stop()
    assert p.returncode == 0, p.stderr
    fills = tick_fills(p.stdout)
    assert len(fills) == TICKS and "feed errors" not in p.stdout, p.stdout
    # paper fills from the second tick: the first tick's orders are active a round trip after it (#23)
    assert fills[0] == 0 and fills[1] >= 1, p.stdout
    assert "Traceback" not in p.stderr
    if keyed:
        assert state.signed and "no live WebSocket books" not in p.stderr
        assert ws is not None and ws.connections >= 1
    else:
        assert not state.signed and "no live WebSocket books" in p.stderr
    live = tables(db)
    assert live["fills"]
    # the recording replays (the columnar path, then the row engine) to the same cash
    for extra in ((), ("--row-engine",)):
        out = tmp_path / f"replay{len(extra)}.db"
        r = in_process(
            capfd, "replay", "--catalog", str(catalog), "--db", str(out), "--config", str(cfg), *extra, env=env
        )
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        again = tables(out)
        assert again["fills"] == live["fills"], extra
        assert again["decisions"] == live["decisions"], extra
        assert cash_of(out) == cash_of(db), extra


@pytest.mark.parametrize(
    ("unsigned", "batch", "said"),
    [
        (True, False, "order books asked for one market at a time"),  # an older server: the fallback
        (False, True, "a key is needed"),  # the server wants a signature, and there is no key
    ],
)
def test_kakashi_snapshot_says_its_fetchs_notes_once(capfd, tmp_path, unsigned, batch, said):
    state = FakeKalshi.with_markets(3, require_signature=not unsigned, batch_books=batch)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[kalshi]\ntimeout_s = 2.0\nmax_retries = 1\nbackoff_base_s = 0.01\nreads_per_s = 500\n")
    with FakeKalshiServer(state) as rest:
        p = in_process(
            capfd,
            *("snapshot", "--source", "kalshi", "--api-base", rest.base_url, "--strict"),
            *("--db", str(tmp_path / "k.db"), "--config", str(cfg)),
        )
    assert p.returncode == 0, p.stderr
    notes = [ln for ln in p.stdout.splitlines() if ln.startswith("note: ")]
    assert len([n for n in notes if said in n]) == 1, p.stdout + p.stderr
    assert "snapshot: 3 saved" in p.stdout and "Traceback" not in p.stderr
