"""Crash logs and owner-only files.

A crash log holds the traceback of an error we did not foresee, for the operator to send us.
Each one gets its own name (UTC time, process id and random hex) in the temp folder and is
created exclusively, never through a symlink, readable by its owner only
(``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0600): a file or link planted at a predictable name
is never followed, overwritten or left readable by others.

``owner_only`` makes files Kakashi keeps (the database, its WAL and SHM, logs, reports,
charts, a catalog) 0600 (folders 0700) whatever mode an existing file of ours had (never a
device, a pipe or another user's file); ``create_private``
opens a new file the same way as a crash log.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
import time
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_NEW_PRIVATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_private(path: str | os.PathLike[str]) -> int:
    """A new file opened for writing, mode 0600; refuses (FileExistsError) anything already at
    ``path``, a symlink included. Returns the descriptor."""
    fd = os.open(path, _NEW_PRIVATE, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # whatever the umask
    return fd


def owner_only(*paths: str | os.PathLike[str]) -> None:
    """Make each existing path owner-only (0600, folders 0700); a missing one is skipped, and
    one that is not ours to change is left as it is: another user's (even to root), or not a
    file or folder at all (``/dev/null`` named as a log stays usable by everyone)."""
    for p in paths:
        try:
            st = os.stat(p)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) or st.st_uid != os.geteuid():
            continue
        want = PRIVATE_DIR if stat.S_ISDIR(st.st_mode) else PRIVATE_FILE
        if stat.S_IMODE(st.st_mode) & 0o077 or stat.S_IMODE(st.st_mode) & want != want:
            try:
                os.chmod(p, stat.S_IMODE(st.st_mode) & 0o700 | want)
            except PermissionError:
                pass


def sqlite_files(db: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """A SQLite database and the WAL and shared-memory files beside it."""
    p = Path(db)
    return p, Path(f"{p}-wal"), Path(f"{p}-shm")


def write_crash_log(
    text: str, directory: str | os.PathLike[str] | None = None, prefix: str = "kakashi-crash"
) -> Path | None:
    """Write ``text`` to a new crash log; its path, or None when none could be written."""
    folder = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for _ in range(8):
        path = folder / f"{prefix}-{stamp}-{os.getpid()}-{secrets.token_hex(6)}.log"
        try:
            fd = create_private(path)
        except FileExistsError:
            continue  # that name is taken (or planted): draw another
        except OSError:
            return None
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        return path
    return None
