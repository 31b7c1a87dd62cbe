"""Files the operator names (beliefs, config, the Kalshi key, replay and catalog files): read
only when they are regular files, and refused at once otherwise.

Opening a named pipe for reading waits for a writer, and a device can answer forever (or change
state when opened), so a path is looked at (``stat``) before it is opened, opened with
``O_NONBLOCK`` (which never waits), and looked at again through the open descriptor (``fstat``:
the file that was opened, whatever was swapped in at the path meanwhile). A pipe, a device, a
socket or a folder is an ``OSError`` whose ``strerror`` says what it is (``not a regular file
(a named pipe)``), so a caller's ``cannot read X: {e.strerror}`` is its one line.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import BinaryIO

_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """A path that names something other than a regular file, refused before it is read."""


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words (``a named pipe``)."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a folder" if stat.S_ISDIR(mode) else "not a file"


def refuse_unless_regular(st: os.stat_result, path: str | os.PathLike[str]) -> None:
    """Raise for anything but a regular file: a folder as ``IsADirectoryError``, the rest
    (pipe, device, socket) as ``NotRegularFile``."""
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    raise NotRegularFile(errno.EINVAL, f"not a regular file ({kind_of(st.st_mode)})", os.fspath(path))


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """The regular file's ``stat`` (following links), without opening it; an OSError otherwise
    (missing: ``FileNotFoundError``; a pipe or device: ``NotRegularFile``)."""
    st = os.stat(path)
    refuse_unless_regular(st, path)
    return st


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """A regular file opened for reading (binary); never waits, never opens a pipe or device
    for good. Raises OSError (``NotRegularFile`` for a pipe, device or socket) or ValueError
    (a NUL in the path)."""
    check_regular(path)  # a device is not even opened
    fd = os.open(path, _OPEN)
    try:
        refuse_unless_regular(os.fstat(fd), path)  # what was opened, if the path changed meanwhile
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a regular file (one more than allowed: the caller can tell
    a file that is too large); errors as ``open_regular``."""
    with open_regular(path) as f:
        return f.read(limit + 1)
