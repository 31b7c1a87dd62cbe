"""Kakashi's configuration: a TOML file (``--config`` or ``KAKASHI_CONFIG``), all optional.

Unknown keys are refused, and so are limits that loosen the guardrails of
risk_limits.md: a configuration can only make Kakashi more careful.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from kakashi_tui.core.risk import RiskLimits
from kakashi_tui.core.strategy import StrategyConfig
from kakashi_tui.engine import EngineConfig
from kakashi_tui.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RiskSection(_Section):
    max_loss_per_trade_pct: Decimal = Decimal("1")
    max_open_positions: int = 5
    daily_loss_cap_pct: Decimal = Decimal("3")
    max_quote_age_s: float = Field(default=30.0, gt=0)
    max_spread: Decimal = Decimal("0.05")
    on_daily_stop: Literal["hold", "flatten"] = "hold"  # what the daily stop does to open positions


class FeesSection(_Section):
    taker_multiplier: Decimal = Field(default=Decimal("0.07"), ge=0, le=1)
    series: dict[str, Decimal] = Field(default_factory=dict)


class SimSection(_Section):
    seed: int = 7
    markets: int = Field(default=8, ge=1, le=5000)
    step_seconds: int = Field(default=60, gt=0)
    oracle_noise: float = Field(default=0.03, ge=0, le=0.5)


class KalshiSection(_Section):
    api_base: str | None = None
    # Credentials are not needed to paper-trade (market data is public). If present they are
    # held as SecretStr (masked in any repr) and never logged, stored or reported.
    api_key_id: SecretStr | None = None
    private_key_file: str | None = None  # PEM RSA key, owner-only (mode 0600); signs reads (order books)
    reads_per_s: float = Field(default=20.0, gt=0, le=1000)  # client-side pacing (Kalshi Basic tier: 20)
    beliefs: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=10)
    backoff_base_s: float = Field(default=0.5, gt=0, le=30)


class DeskSection(_Section):
    time_zone: Literal["utc", "local"] = "utc"  # how the desk shows times (always labelled)
    log: str | None = None  # default: kakashi.log beside the database
    postmortem: Literal["weekly", "daily", "off"] = "weekly"  # written by itself at each boundary (UTC)
    reports_dir: str = "reports"


class AlertsSection(_Section):
    bell: bool = True  # ring the terminal bell on an alert
    webhook_url: str | None = None  # POST a small JSON per alert to your own URL; off by default

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, v: str | None) -> str | None:
        from kakashi_tui.alerts import check_webhook_url

        return None if v is None else check_webhook_url(v)


class EngineSection(_Section):
    # A failed tick is logged and retried; this many in a row throw the kill switch.
    max_consecutive_failures: int = Field(default=5, ge=1, le=1000)


class KakashiConfig(_Section):
    bankroll: Decimal = Field(default=Decimal("1000"), gt=0)
    db: str = "kakashi.db"
    risk: RiskSection = RiskSection()
    strategy: StrategyConfig = StrategyConfig()
    fees: FeesSection = FeesSection()
    sim: SimSection = SimSection()
    kalshi: KalshiSection = KalshiSection()
    desk: DeskSection = DeskSection()
    alerts: AlertsSection = AlertsSection()
    engine: EngineSection = EngineSection()

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            bankroll_cents=int(self.bankroll * 100),
            limits=RiskLimits(
                max_loss_per_trade_pct=self.risk.max_loss_per_trade_pct,
                max_open_positions=self.risk.max_open_positions,
                daily_loss_cap_pct=self.risk.daily_loss_cap_pct,
                max_quote_age_ms=int(self.risk.max_quote_age_s * 1000),
                max_spread=self.risk.max_spread,
            ),
            strategy=self.strategy,
            taker_fee_multiplier=self.fees.taker_multiplier,
            series_fee_multipliers=dict(self.fees.series),
            on_daily_stop=self.risk.on_daily_stop,
        )


def _one_line(e: ValidationError, where: str) -> str:
    first = e.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "config"
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{where}: {loc}: {msg}{more}"


def load_config(path: str | None = None) -> KakashiConfig:
    """Defaults, or the TOML file given (argument, then ``KAKASHI_CONFIG``)."""
    path = path or os.environ.get("KAKASHI_CONFIG") or None
    data: dict = {}
    where = "defaults"
    if path:
        p = Path(path)
        where = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"cannot read config {p}: {e.strerror}") from e
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"config {p} is not valid TOML: {e}") from None
    try:
        cfg = KakashiConfig.model_validate(data)
        cfg.engine_config()  # the risk limits are checked against the hard ceilings here
    except ValidationError as e:
        raise ConfigError(_one_line(e, where)) from None
    if path and cfg.kalshi.api_key_id is not None and Path(path).stat().st_mode & 0o077:
        raise ConfigError(f"{path} holds credentials but others can read it: chmod 600 {path}")
    return cfg
