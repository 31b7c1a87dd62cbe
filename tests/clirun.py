"""The ``kakashi`` command, run two ways, for every test that runs it (one home for both).

- ``kakashi(*args)`` starts a real process (``python -m kakashi_tui``), for what only a process
  shows: a signal, a kill -9, a wait on a pipe, two processes at one database, start-up imports.
- ``in_process(capfd, *args)`` calls ``cli.main`` in the test's process: the same code, exit code
  and lines (captured at the file descriptors, as a process's would be), without the 0.5 to 1 s of
  CPU a fresh interpreter spends importing Kakashi. A test whose subject is the command's output,
  exit code or what it stores uses this one. (185 processes a run cost the suite about a third of
  its CPU: issue #21's time budget.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from kakashi_tui.frontends.cli import main as cli

#: The environment a started process gets: the operator's, without Kakashi's own settings.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("KAKASHI_")} | {"PYTHONUNBUFFERED": "1"}


def kakashi(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60, **kw: object
) -> subprocess.CompletedProcess[str]:
    """``kakashi *args`` in a process of its own; ``env`` replaces ``ENV`` whole."""
    return subprocess.run(
        [sys.executable, "-m", "kakashi_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env if env is not None else ENV),
        **kw,  # type: ignore[call-overload]
    )


def in_process(capfd, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``kakashi *args`` through ``cli.main`` in this process. ``env``: variables set for the call
    only (the test's environment, without any ``KAKASHI_`` setting, is put back after)."""
    capfd.readouterr()
    code = main_code(*args, env=env)
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["kakashi", *args], code, out, err)


def main_code(*args: str, env: Mapping[str, str] | None = None) -> int:
    """``cli.main(args)``'s exit code, its output left to pytest's capture (for a fixture of a wider
    scope than ``capfd``'s); the process's umask and environment are put back after."""
    umask = os.umask(0o022)  # cli.main sets 0o077 for the process
    os.umask(umask)
    saved = dict(os.environ)
    for k in [k for k in os.environ if k.startswith("KAKASHI_")]:
        del os.environ[k]
    os.environ.update(env or {})
    try:
        return cli.main(list(args))
    except SystemExit as e:  # what `python -m kakashi_tui` would have exited with
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    finally:
        os.umask(umask)
        os.environ.clear()
        os.environ.update(saved)
