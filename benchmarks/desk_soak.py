"""An hour of the desk as an operator leaves it: 1,000 Kalshi-shaped markets whose prices move,
outside commands, dialogs opened and closed, and the feed killed and restarted twice.

    .venv/bin/python -m benchmarks.desk_soak --minutes 60          # what the README reports
    .venv/bin/python -m benchmarks.desk_soak --minutes 6 --keep    # a short rehearsal

It needs tmux. In a new folder it makes a throwaway API key, a beliefs file for 50 markets and
a config, then starts:

- the **feed**: this module's ``feed`` mode in a process of its own, a loopback Kalshi REST
  server (``kakashi_tui/testing/fake_kalshi.py``) listing ``--markets`` markets whose books move
  (a random walk of 5% of them a second, from its own seeded stream) and the loopback WebSocket
  server (``fake_kalshi_ws.py``) serving the believed markets' books;
- the **desk**: ``kakashi run --source kalshi`` in a detached tmux session of 120x40, signing
  with the key, one tick a second.

On a schedule scaled to ``--minutes`` (for 60: minute 15 and 35) it kills the feed with
SIGKILL and restarts it two minutes later; at minute 45 it stops the feed (SIGSTOP, a hung
server) for 90 s. Between those it sends outside commands (``kakashi pause``/``resume``,
``kill``; a re-arm is refused from outside a running desk, so it presses ``r``, ``y``) and
opens and closes the desk's dialogs with keys (``?``, ``m``, ``t``, ``b``, Enter, each with
Escape). Every 30 s it captures the pane to ``captures/NNNN.txt``.

At the end it prints one line per capture: the time, what the script had just done, the status
line, and how many lines of each panel changed since the previous capture. A panel that stops
changing while the status line says RUNNING is the freeze issue #19 is about. Not a test:
nothing here asserts; read the table (and the captures, with ``--keep``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY_ID = "soak-key-id"
SESSION = "kakashi-soak"


# --- the feed process ---------------------------------------------------------------------------


def feed(folder: Path, port: int, ws_port: int, markets: int, seed: int) -> None:
    from cryptography.hazmat.primitives import serialization

    from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
    from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS

    st = FakeKalshi.with_markets(markets, seed=seed, page_size=1000)
    st.key_id = KEY_ID
    key = serialization.load_pem_private_key((folder / "kalshi.pem").read_bytes(), None)
    st.public_key = key.public_key()
    believed = tuple((folder / "believed.txt").read_text().split())
    srv = FakeKalshiServer(st, port=port).start()
    ws = FakeKalshiWS(believed, interval=0.5)
    ws.start(ws_port)
    mover = random.Random(seed * 7919 + int(time.time()))  # its own stream: a restart moves on

    def move() -> None:
        while True:
            time.sleep(1.0)
            with st.lock:
                for m in mover.sample(st.markets, max(1, len(st.markets) // 20)):
                    bid0, ask0 = m.bid, m.ask
                    if bid0 is None or ask0 is None or m.status != "active":
                        continue
                    step = Decimal(mover.choice((-1, 0, 1))) * m.tick
                    bid = min(max(bid0 + step, m.tick), Decimal("0.90"))
                    m.touch(bid=bid, ask=bid + (ask0 - bid0))

    threading.Thread(target=move, daemon=True).start()
    print(f"feed ready {srv.base_url} {ws.url}", flush=True)
    threading.Event().wait()


# --- the operator -------------------------------------------------------------------------------


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_feed(folder: Path, port: int, ws_port: int, markets: int, seed: int) -> subprocess.Popen:
    logfile = folder / "feed.log"
    start = logfile.stat().st_size if logfile.exists() else 0
    log = open(logfile, "a")  # noqa: SIM115 (the child keeps it)
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.desk_soak",
            "feed",
            "--folder",
            str(folder),
            "--port",
            str(port),
            "--ws-port",
            str(ws_port),
            "--markets",
            str(markets),
            "--seed",
            str(seed),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "feed ready" not in logfile.read_text()[start:]:
        time.sleep(0.2)
    return p


def prepare(folder: Path, markets: int, port: int, ws_port: int) -> None:
    from kakashi_tui.testing.fake_kalshi import FakeKalshi, make_test_key

    make_test_key(folder, KEY_ID)
    st = FakeKalshi.with_markets(markets, seed=1, page_size=1000)
    chosen = st.markets[:: max(1, markets // 50)][:50]
    r = random.Random(5)
    lines = ["ticker,p_hat"]
    for m in chosen:
        mid = ((m.bid or Decimal(0)) + (m.ask or Decimal(1))) / 2
        p = min(max(mid + Decimal(r.choice((-8, -5, 5, 8))) / 100, Decimal("0.03")), Decimal("0.97"))
        lines.append(f"{m.ticker},{p}")
    (folder / "beliefs.csv").write_text("\n".join(lines) + "\n")
    (folder / "believed.txt").write_text("\n".join(m.ticker for m in chosen) + "\n")
    (folder / "soak.toml").write_text(
        f'[kalshi]\napi_base = "http://127.0.0.1:{port}/trade-api/v2"\n'
        f'ws_url = "ws://127.0.0.1:{ws_port}/trade-api/ws/v2"\n'
        f'beliefs = "{folder / "beliefs.csv"}"\n'
        '[desk]\npostmortem = "off"\n'
    )


PANEL_ROWS = {  # rough row bands of the 120x40 layout, for the change counts
    "status": (0, 2),
    "top": (2, 20),
    "bottom": (20, 39),
}


def changed(a: list[str], b: list[str]) -> dict[str, int]:
    out = {}
    for name, (lo, hi) in PANEL_ROWS.items():
        out[name] = sum(1 for i in range(lo, hi) if (a[i] if i < len(a) else "") != (b[i] if i < len(b) else ""))
    return out


def operator(minutes: float, markets: int, keep: bool) -> None:
    if not shutil.which("tmux"):
        sys.exit("desk_soak: tmux is not installed")
    folder = Path(tempfile.mkdtemp(prefix="kakashi-desk-soak-"))
    (folder / "captures").mkdir()
    port, ws_port = free_port(), free_port()
    prepare(folder, markets, port, ws_port)
    seed = 1
    fp = start_feed(folder, port, ws_port, markets, seed)
    env = (
        f"KAKASHI_KALSHI_KEY_ID={KEY_ID} KAKASHI_KALSHI_KEY_FILE={folder / 'kalshi.pem'} "
        f"KAKASHI_CONFIG={folder / 'soak.toml'}"
    )
    kakashi = ROOT / ".venv" / "bin" / "kakashi"
    db = folder / "k.db"
    sh("tmux", "kill-session", "-t", SESSION)
    sh(
        "tmux",
        "new-session",
        "-d",
        "-s",
        SESSION,
        "-x",
        "120",
        "-y",
        "40",
        f"env {env} {kakashi} run --source kalshi --db {db} --interval 1; sleep 600",
    )
    scale = minutes / 60.0
    schedule: list[tuple[float, str]] = []
    for m in range(2, int(minutes) + 1, max(1, int(4 * scale) or 1)):
        schedule.append((m * 60, "dialogs"))
    for m, what in ((5, "pause"), (7, "resume"), (10, "kill"), (12, "rearm"), (25, "pause"), (27, "resume")):
        schedule.append((m * 60 * scale, what))
    for m, what in ((15, "feed-kill"), (17, "feed-start"), (35, "feed-kill"), (37, "feed-start")):
        schedule.append((m * 60 * scale, what))
    schedule += [(45 * 60 * scale, "feed-stop"), (45 * 60 * scale + 90, "feed-cont")]
    schedule.sort()
    t0 = time.monotonic()
    last_event = "start"
    rows: list[tuple[str, str, str, dict[str, int]]] = []
    prev: list[str] | None = None
    n = 0
    next_cap = 30.0
    while True:
        now = time.monotonic() - t0
        if now >= minutes * 60:
            break
        while schedule and schedule[0][0] <= now:
            _, what = schedule.pop(0)
            last_event = what
            if what in ("pause", "resume", "kill"):
                sh(str(kakashi), what, "--db", str(db))
            elif what == "rearm":  # refused from outside a running desk by design: its own r, y
                sh("tmux", "send-keys", "-t", SESSION, "r")
                time.sleep(1.0)
                sh("tmux", "send-keys", "-t", SESSION, "y")
            elif what == "dialogs":
                for k in ("?", "m", "t", "b", "Enter"):
                    sh("tmux", "send-keys", "-t", SESSION, k)
                    time.sleep(0.7)
                    sh("tmux", "send-keys", "-t", SESSION, "Escape")
                    time.sleep(0.7)
            elif what == "feed-kill":
                fp.send_signal(signal.SIGKILL)
                fp.wait()
            elif what == "feed-start":
                fp = start_feed(folder, port, ws_port, markets, seed)
            elif what == "feed-stop":
                fp.send_signal(signal.SIGSTOP)
            elif what == "feed-cont":
                fp.send_signal(signal.SIGCONT)
        if now >= next_cap:
            next_cap += 30
            text = sh("tmux", "capture-pane", "-p", "-t", SESSION).stdout
            (folder / "captures" / f"{n:04d}.txt").write_text(text)
            n += 1
            lines = text.splitlines()
            diff = changed(prev, lines) if prev is not None else {k: 0 for k in PANEL_ROWS}
            rows.append((f"{now / 60:5.1f}", last_event, lines[0][:70] if lines else "", diff))
            prev = lines
        time.sleep(1)
    sh("tmux", "send-keys", "-t", SESSION, "q")
    time.sleep(2)
    sh("tmux", "send-keys", "-t", SESSION, "y")
    time.sleep(3)
    sh("tmux", "kill-session", "-t", SESSION)
    fp.send_signal(signal.SIGCONT)
    fp.kill()
    print("min   after        " + " ".join(f"{k:>6}" for k in PANEL_ROWS) + "  status line")
    for t, ev, status, diff in rows:
        print(f"{t} {ev:12} " + " ".join(f"{diff[k]:6d}" for k in PANEL_ROWS) + f"  {status}")
    print(f"folder: {folder}" if keep else "")
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", default="operator", choices=("operator", "feed"))
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--markets", type=int, default=1000)
    ap.add_argument("--keep", action="store_true", help="keep the folder (database, log, captures)")
    ap.add_argument("--folder", type=Path)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ws-port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.mode == "feed":
        os.setpgrp()
        feed(a.folder, a.port, a.ws_port, a.markets, a.seed)
    else:
        operator(a.minutes, a.markets, a.keep)


if __name__ == "__main__":
    main()
