"""An operator throws the kill switch from another terminal: ``kakashi kill``, ``pause``,
``resume`` and ``status`` start without the feeds', the catalog's, the charts' or the desk's
libraries (about 0.6 s of CPU when ``trading/runtime.py`` imported them all at module level)."""

import json
import os
import subprocess
import sys

from tests.clirun import in_process

HEAVY = ("pyarrow", "numpy", "httpx", "websockets", "matplotlib", "textual", "sklearn", "scipy")

# Each command in turn in one fresh process; after each, its exit code, its output and which of
# HEAVY are loaded so far (the first command that loads one is the one named in a failure).
SCRIPT = """
import contextlib, io, json, sys
from kakashi_tui.frontends.cli import main
heavy = json.loads(sys.argv[1])
for argv in json.loads(sys.argv[2]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main.main(argv)
    print(json.dumps([argv[0], rc, out.getvalue(), sorted(m for m in heavy if m in sys.modules)]))
"""


def test_kill_pause_resume_status_import_no_feed_catalog_chart_or_desk(tmp_path, capfd):
    db = str(tmp_path / "k.db")
    assert in_process(capfd, "run", "--headless", "--ticks", "5", "--db", db).returncode == 0
    commands = [
        ["pause", "--db", db],
        ["resume", "--db", db],
        ["kill", "--db", db, "--reason", "from another terminal"],
        ["status", "--db", db],
        ["status", "--health", "--db", db],
    ]
    # Nor the engine (nor the service) for a request or a plain status: requests.py stands apart.
    watched = (*HEAVY, "kakashi_tui.trading.engine", "kakashi_tui.trading.service")
    env = {k: v for k, v in os.environ.items() if k not in ("KAKASHI_CONFIG", "KAKASHI_DB")}
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(watched), json.dumps(commands)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    done = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(name, loaded) for name, _rc, _out, loaded in done[:4]] == [(c[0], []) for c in commands[:4]]
    assert set(done[4][3]) <= {"kakashi_tui.trading.engine"}  # (--health's judge names the engine's states)
    # They did their work (the same lines as before): not a cheap start that skipped it.
    assert [rc for _name, rc, _out, _loaded in done] == [0, 0, 0, 0, 0]
    assert done[0][2].startswith("paused: no new paper decisions")
    assert done[1][2].startswith("resumed (")
    assert done[2][2].startswith("kill switch thrown: no new paper orders until `kakashi rearm`")
    assert done[3][2].startswith("cash ") and "THROWN (from another terminal)" in done[3][2]
    assert "HALTED (kill switch: from another terminal)" in done[4][2]
