"""Errors the operator sees as one line. ``exit_code`` 2 = usage/config, 1 = runtime."""

from __future__ import annotations


class KakashiError(Exception):
    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(KakashiError):
    exit_code = 2


class StoreError(KakashiError):
    exit_code = 1
