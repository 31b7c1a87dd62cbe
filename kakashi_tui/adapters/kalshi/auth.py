"""Kalshi's signed request headers, for reads only (the WebSocket and ``account/*`` need them).

Kalshi signs a request with the account's API key, RSA or Ed25519 (Kalshi accepts both; spec
3.34): ``KALSHI-ACCESS-SIGNATURE`` is the base64 of a signature over the text
``timestamp_ms + METHOD + path``, where the path starts at ``/trade-api/`` and carries no query
string: RSA-PSS (SHA-256, MGF1 with SHA-256, salt length = digest length) with an RSA key,
plain Ed25519 with an Ed25519 key. ``KALSHI-ACCESS-KEY`` is the key id and
``KALSHI-ACCESS-TIMESTAMP`` the same milliseconds.

The signing is ``cryptography``'s; nothing here is hand-rolled. The key id and the key are
secrets: they are never put in a repr, a message or an exception (a ``Signer`` prints as
``Signer(<key set>)``), and a key file that group or others can read is refused.

Credentials come from ``KAKASHI_KALSHI_KEY_ID`` / ``KAKASHI_KALSHI_KEY_FILE`` or from the
config's ``[kalshi] api_key_id`` / ``private_key_file`` (the environment wins).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from kakashi_tui.adapters.userfiles import open_regular
from kakashi_tui.core.errors import ConfigError

ENV_KEY_ID = "KAKASHI_KALSHI_KEY_ID"
ENV_KEY_FILE = "KAKASHI_KALSHI_KEY_FILE"
MAX_KEY_FILE_BYTES = 64 * 1024  # a PEM RSA key is a few KB
KEY_KINDS = "an RSA or Ed25519 private key"


def _key_kind(key: object) -> str | None:
    """ "rsa", "ed25519", or None for any other kind of key."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    return None


class Signer:
    """Signs requests with one key. Holds the key object only; prints nothing secret."""

    __slots__ = ("_key_id", "_key", "_kind", "_clock")

    def __init__(self, key_id: str, private_key: object, clock: Callable[[], int] | None = None) -> None:
        kind = _key_kind(private_key)
        if kind is None:
            raise ConfigError(f"Kalshi private key: not {KEY_KINDS}")
        # A request header carries it: printable ASCII only (never echoed: it is a credential).
        if not key_id or not key_id.isascii() or not key_id.isprintable() or len(key_id) > 200:
            raise ConfigError("Kalshi API key id: empty, longer than 200 characters or not printable ASCII")
        self._key_id = key_id
        self._key = private_key
        self._kind = kind
        self._clock = clock or (lambda: int(time.time() * 1000))

    def __repr__(self) -> str:
        return "Signer(<key set>)"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:  # never pickled (pickles end up in files)
        raise TypeError("a Signer holds a secret and cannot be pickled")

    def headers(self, method: str, path: str) -> dict[str, str]:
        """The three headers for ``method`` on ``path`` (from ``/trade-api/``; a query is cut off)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        path = path.split("?", 1)[0]
        ts = str(self._clock())
        message = (ts + method.upper() + path).encode("utf-8")
        if self._kind == "ed25519":  # the same text, signed with Ed25519 (no hash or padding to choose)
            signature = self._key.sign(message)  # type: ignore[attr-defined]
        else:
            signature = self._key.sign(  # type: ignore[attr-defined]
                message,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
                hashes.SHA256(),
            )
        return {
            "KALSHI-ACCESS-KEY": self._key_id,
            "KALSHI-ACCESS-TIMESTAMP": ts,
            "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode("ascii"),
        }


def load_private_key(path: str | os.PathLike[str]) -> object:
    """The RSA or Ed25519 key in a PEM file that only its owner can read; a ConfigError (one
    line, no key material) otherwise (another kind of key included: Kalshi takes only these)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    p = Path(path)
    try:
        f = open_regular(p)  # a pipe or device is refused at once, never waited on
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read Kalshi key file {p}: {getattr(e, 'strerror', None) or e}") from None
    with f:
        st = os.fstat(f.fileno())
        if st.st_mode & 0o077:
            raise ConfigError(f"Kalshi key file {p} can be read by others: chmod 600 {p}")
        if st.st_size > MAX_KEY_FILE_BYTES:
            raise ConfigError(f"Kalshi key file {p} is too large to be a PEM private key")
        data = f.read(MAX_KEY_FILE_BYTES + 1)
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):  # the library's message may quote the file: keep it out
        raise ConfigError(f"Kalshi key file {p} is not an unencrypted PEM private key") from None
    if _key_kind(key) is None:
        raise ConfigError(f"Kalshi key file {p} does not hold {KEY_KINDS} (Kalshi accepts only these)")
    return key


def signer_from(
    key_id: str | None,
    key_file: str | None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], int] | None = None,
) -> tuple[Signer | None, str | None]:
    """(Signer, None) from the environment (``KAKASHI_KALSHI_KEY_ID`` / ``KAKASHI_KALSHI_KEY_FILE``,
    which win) or the given config values; (None, None) when no credentials are set. Half a
    pair is (None, a notice saying what is missing): Kakashi runs unsigned. A key file that
    others can read or that holds neither an RSA nor an Ed25519 key is a ConfigError."""
    env = os.environ if env is None else env
    kid = env.get(ENV_KEY_ID) or key_id or None
    kfile = env.get(ENV_KEY_FILE) or key_file or None
    if kid is None and kfile is None:
        return None, None
    if kid is None:
        return None, (
            f"Kalshi: a key file is set but no key id ({ENV_KEY_ID} or [kalshi] api_key_id), so requests are not signed"
        )
    if kfile is None:
        return None, (
            f"Kalshi: a key id is set but no key file ({ENV_KEY_FILE} or [kalshi] private_key_file), "
            "so requests are not signed"
        )
    return Signer(kid, load_private_key(kfile), clock=clock), None
