"""Kakashi's configuration: a TOML file (``--config`` or ``KAKASHI_CONFIG``), all optional.

Unknown keys are refused (naming the nearest valid key), and so are limits that loosen the
guardrails of risk_limits.md: a configuration can only make Kakashi more careful. Every
number has a bound: nothing non-finite (``inf``, ``nan``) or absurd (a bankroll of 1e30, a
simulated step of three hundred million years) gets past loading. A refusal is one line
naming the file, the section and the key.

The settings more than one place can give (the database file, the API base, the Kalshi
credentials, the beliefs file, the catalog folder, the simulator's seed, market count and step)
are resolved by pydantic-settings (``Settings``), each with its origin, in one order: command
line > environment > config file > what the database remembers > default.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from kakashi_tui.adapters.sim import BLOCK_TRADE_RATE, PRINTS_PER_STEP, QUIET_RATE
from kakashi_tui.adapters.userfiles import read_regular
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.core.fees import FeeSchedule
from kakashi_tui.core.risk import (
    HARD_DAILY_LOSS_CAP_PCT,
    HARD_MAX_DRAWDOWN_PCT,
    HARD_MAX_EVENT_LOSS_PCT,
    HARD_MAX_LOSS_PER_TRADE_PCT,
    HARD_MAX_OPEN_POSITIONS,
    RiskLimits,
)
from kakashi_tui.core.strategy import StrategyConfig
from kakashi_tui.core.text import safe_text

#: The loosest [risk] values a configuration may set (the defaults; risk_limits.md). The first
#: three are the core's ceilings, which ``RiskLimits`` enforces as well.
HARD_MAX_QUOTE_AGE_S = 30
HARD_MAX_SPREAD = Decimal("0.05")
#: Bounds on the other numbers (README, Configuration).
MAX_BANKROLL = Decimal("100000000")  # dollars: ten billion cents, far inside SQLite's integers
MAX_SIM_STEP_SECONDS = 86_400
MAX_SEED = 2**63 - 1
MAX_TIMEOUT_S = 300
MAX_PATH_CHARS = 4096
MAX_CONFIG_BYTES = 1 << 20
MAX_LATENCY_MS = 3_600_000  # an hour: a paper order's latency past it is a mistake (core/orders.py)


def _text_path(v: str) -> str:
    if not v.strip() or "\x00" in v or len(v) > MAX_PATH_CHARS:
        raise ValueError("must be a file path (not empty, no NUL, at most 4096 characters)")
    return v


def check_api_base(url: str) -> str:
    """An http(s) URL with a host (and optionally a port and a path); the one rule for
    ``--api-base``, ``KAKASHI_API_BASE`` and ``[kalshi] api_base``. Returns it unchanged."""
    if not isinstance(url, str) or not url or len(url) > 2048 or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(f"not an http(s) URL: {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port  # a port that is not a number or out of range raises here
    except ValueError:
        raise ValueError(f"not an http(s) URL (bad port or host): {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("an API base URL must not carry a user name or password")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError(f"an API base URL takes no query or fragment: {url!r}")
    if port == 0:
        raise ValueError(f"not an http(s) URL (port 0): {url!r}")
    return url


class EngineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bankroll_cc: int = Field(default=10_000_000, gt=0)  # $1,000
    limits: RiskLimits = RiskLimits()
    strategy: StrategyConfig = StrategyConfig()
    taker_fee_multiplier: Decimal = Field(default=Decimal("0.07"), ge=0, le=1)
    series_fee_multipliers: dict[str, Decimal] = Field(default_factory=dict)
    on_daily_stop: Literal["hold", "flatten"] = "hold"  # open positions when the daily stop is hit
    # paper orders (issue #23, [fills]): None is "auto", the median of the source's measured
    # request round trips, else 500 ms (core/orders.py DEFAULT_INSERT_LATENCY_MS)
    insert_latency_ms: int | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)
    cancel_latency_ms: int | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)
    queue_model: Literal["risk_averse", "prob", "front"] = "risk_averse"
    # [catalog] dir: where a plan's closing lines fall back to candlesticks, as the report's
    # (adapters/closing.py); None: catalog/ beside the database
    catalog_dir: str | None = None

    def fees(self) -> FeeSchedule:
        return FeeSchedule(self.taker_fee_multiplier, dict(self.series_fee_multipliers))


class _Section(BaseModel):
    # allow_inf_nan=False: a float key refuses inf and nan (Decimal keys refuse them anyway).
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _tighten_only(name: str, ceiling: Any, unit: str = ""):
    def check(v: Any) -> Any:
        if v > ceiling:
            raise ValueError(f"loosens {name} past {ceiling}{unit}: [risk] may only tighten (risk_limits.md)")
        return v

    return AfterValidator(check)


class RiskSection(_Section):
    """Every limit may only tighten: its default is the loosest value allowed."""

    max_loss_per_trade_pct: Annotated[
        Decimal, Field(gt=0), _tighten_only("the per-trade cap", HARD_MAX_LOSS_PER_TRADE_PCT, "%")
    ] = HARD_MAX_LOSS_PER_TRADE_PCT
    max_open_positions: Annotated[int, Field(ge=0), _tighten_only("max open positions", HARD_MAX_OPEN_POSITIONS)] = (
        HARD_MAX_OPEN_POSITIONS
    )
    daily_loss_cap_pct: Annotated[
        Decimal, Field(gt=0), _tighten_only("the daily loss cap", HARD_DAILY_LOSS_CAP_PCT, "%")
    ] = HARD_DAILY_LOSS_CAP_PCT
    max_quote_age_s: Annotated[  # at least a millisecond: the engine counts quote ages in ms
        float, Field(ge=0.001), _tighten_only("the stale-quote guard", HARD_MAX_QUOTE_AGE_S, " s")
    ] = float(HARD_MAX_QUOTE_AGE_S)
    max_spread: Annotated[Decimal, Field(gt=0), _tighten_only("the max spread", HARD_MAX_SPREAD)] = HARD_MAX_SPREAD
    on_daily_stop: Literal["hold", "flatten"] = "hold"  # what the daily stop does to open positions (a choice)
    max_drawdown_pct: Annotated[
        Decimal, Field(gt=0), _tighten_only("the drawdown stop", HARD_MAX_DRAWDOWN_PCT, "%")
    ] = HARD_MAX_DRAWDOWN_PCT
    # the event cap: an event's worst case over its outcomes, every position in it counted
    max_event_loss_pct: Annotated[
        Decimal, Field(gt=0), _tighten_only("the event cap", HARD_MAX_EVENT_LOSS_PCT, "%")
    ] = HARD_MAX_EVENT_LOSS_PCT


FeeMultiplier = Annotated[Decimal, Field(ge=0, le=1)]


class FeesSection(_Section):
    taker_multiplier: FeeMultiplier = Decimal("0.07")
    series: dict[Annotated[str, Field(min_length=1, max_length=64)], FeeMultiplier] = Field(default_factory=dict)


class SimSection(_Section):
    seed: int = Field(default=7, ge=0, le=MAX_SEED)
    markets: int = Field(default=8, ge=1, le=5000)
    step_seconds: int = Field(default=60, gt=0, le=MAX_SIM_STEP_SECONDS)
    oracle_noise: float = Field(default=0.03, ge=0, le=0.5)
    # who gives p_hat: the oracle (the hidden probability plus noise) or the control with no edge
    # (the market's mid plus noise); either's noise is ``oracle_noise``'s standard deviation
    forecaster: Literal["oracle", "noise"] = "oracle"
    # the chance per market per step that its makers step away for 1-3 steps (its quote goes stale)
    quiet_rate: float = Field(default=QUIET_RATE, ge=0, le=0.5)
    # the takers' prints between steps (issue #23): their mean number per market per step, and
    # the share of them that are block trades (matched off the book)
    prints_per_step: float = Field(default=PRINTS_PER_STEP, ge=0, le=10)
    block_trade_rate: float = Field(default=BLOCK_TRADE_RATE, ge=0, le=0.5)
    # a recording run writes the simulated books' changes into book_deltas (about ten rows per
    # market per step: a recording tick at 1,000 markets takes about twice as long); off, the
    # snapshots and the prints still hold the same books
    record_books: bool = True
    # events of mutually exclusive brackets (4 markets each; exactly one resolves YES), besides
    # ``markets``: what the event cap (risk_limits.md) meets offline. Remembered like ``markets``
    bracket_events: int = Field(default=1, ge=0, le=1000)


class KalshiSection(_Section):
    api_base: str | None = None
    # Credentials are not needed to paper-trade (market data is public). If present they are
    # held as SecretStr (masked in any repr) and never logged, stored or reported.
    api_key_id: SecretStr | None = None
    private_key_file: str | None = None  # PEM RSA key, owner-only (mode 0600); signs reads (order books)
    reads_per_s: float = Field(default=20.0, gt=0, le=1000)  # client-side pacing (Kalshi Basic tier: 20)
    # Live books over the WebSocket (with a key); default: the api_base's WebSocket host.
    ws_url: str | None = None
    beliefs: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=MAX_TIMEOUT_S)
    max_retries: int = Field(default=4, ge=0, le=10)
    backoff_base_s: float = Field(default=0.5, gt=0, le=30)

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, v: str | None) -> str | None:
        return None if v is None else check_api_base(v)

    @field_validator("beliefs", "private_key_file")
    @classmethod
    def _paths(cls, v: str | None) -> str | None:
        return None if v is None else _text_path(v)


class StrategySection(StrategyConfig):
    """The core's strategy settings, refusing inf and nan like every other section."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


MAX_KEEP_DAYS = 36_600  # a hundred years: "keep" bounds, like every other number


class CatalogSection(_Section):
    dir: str | None = None  # default: catalog/ beside the database
    roll_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Retention: at each roll, the recorder removes date folders older than this many UTC days
    # (today and the newest date it wrote are always kept). Default: keep everything.
    keep_days: int | None = Field(default=None, ge=1, le=MAX_KEEP_DAYS)


class StoreSection(_Section):
    # Retention: at start, quotes (snapshots) and beliefs (estimates) older than this many days
    # before the newest quote are removed from the database, each market's newest of each kept
    # (it marks positions). The ledger, fills, decisions and ticks are never removed. Default: keep all.
    keep_market_data_days: int | None = Field(default=None, ge=1, le=MAX_KEEP_DAYS)


class DeskSection(_Section):
    time_zone: Literal["utc", "local"] = "utc"  # how the desk shows times (always labelled)
    log: str | None = None  # default: kakashi.log beside the database
    postmortem: Literal["weekly", "daily", "off"] = "weekly"  # written by itself at each boundary (UTC)
    reports_dir: str | None = None  # default: reports/ beside the database


class AlertsSection(_Section):
    bell: bool = True  # ring the terminal bell on an alert
    fills: bool = True  # an alert for each paper fill (notification, log, webhook; never the bell)
    webhook_url: str | None = None  # POST a small JSON per alert to your own URL; off by default

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, v: str | None) -> str | None:
        from kakashi_tui.adapters.alerts import check_webhook_url

        return None if v is None else check_webhook_url(v)


Latency = Literal["auto"] | Annotated[int, Field(ge=0, le=MAX_LATENCY_MS)]


class FillsSection(_Section):
    """How paper orders fill (issue #23; rules.md "Paper orders and fills"). A latency is whole
    ms, or ``"auto"``: the median of this run's measured request round trips where the source
    measures them (Kalshi), else 500 ms (the simulator; a replay uses the recorded run's)."""

    insert_latency_ms: Latency = "auto"  # an order is active this long after its decision
    cancel_latency_ms: Latency = "auto"  # a cancel takes effect this long after it is asked for
    queue_model: Literal["risk_averse", "prob", "front"] = "risk_averse"  # resting orders' queue (core/queue.py)


class EngineSection(_Section):
    # A failed tick is logged and retried; this many in a row throw the kill switch.
    max_consecutive_failures: int = Field(default=5, ge=1, le=1000)


class KakashiConfig(_Section):
    bankroll: Decimal = Field(default=Decimal("1000"), gt=0, le=MAX_BANKROLL, decimal_places=2)
    db: str = "kakashi.db"
    risk: RiskSection = RiskSection()
    strategy: StrategySection = StrategySection()
    fees: FeesSection = FeesSection()
    sim: SimSection = SimSection()
    kalshi: KalshiSection = KalshiSection()
    catalog: CatalogSection = CatalogSection()
    store: StoreSection = StoreSection()
    desk: DeskSection = DeskSection()
    alerts: AlertsSection = AlertsSection()
    engine: EngineSection = EngineSection()
    fills: FillsSection = FillsSection()

    @field_validator("db")
    @classmethod
    def _db(cls, v: str) -> str:
        return _text_path(v)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            bankroll_cc=int(self.bankroll * 10_000),
            limits=RiskLimits(
                max_loss_per_trade_pct=self.risk.max_loss_per_trade_pct,
                max_open_positions=self.risk.max_open_positions,
                daily_loss_cap_pct=self.risk.daily_loss_cap_pct,
                max_quote_age_ms=int(self.risk.max_quote_age_s * 1000),
                max_spread=self.risk.max_spread,
                max_drawdown_pct=self.risk.max_drawdown_pct,
                max_event_loss_pct=self.risk.max_event_loss_pct,
            ),
            strategy=self.strategy,
            taker_fee_multiplier=self.fees.taker_multiplier,
            series_fee_multipliers=dict(self.fees.series),
            on_daily_stop=self.risk.on_daily_stop,
            insert_latency_ms=None if self.fills.insert_latency_ms == "auto" else self.fills.insert_latency_ms,
            cancel_latency_ms=None if self.fills.cancel_latency_ms == "auto" else self.fills.cancel_latency_ms,
            queue_model=self.fills.queue_model,
            catalog_dir=self.catalog.dir,
        )


_SECTIONS: dict[str, type[BaseModel]] = {
    name: f.annotation
    for name, f in KakashiConfig.model_fields.items()
    if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)
}
_NUMBERS = (int, float, Decimal)
_SECRET_WORDS = ("key", "secret", "private", "token", "password")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(k: str) -> str:
    """A key as TOML writes it: bare, or quoted when it is not a bare key (escaped, bounded)."""
    return k if _BARE_KEY.fullmatch(k) else safe_text(json.dumps(k, ensure_ascii=False), 60)


def _place(loc: tuple, data: Any) -> tuple[str, str]:
    """("[table] ", "key") for an error location, as the file writes them: the tables the key
    sits in (``[fees.series] ``, from the file's own nesting), then the key; a top-level key has
    no table. (pydantic's ``[key]`` marker for a dict key's own error is not a name.)"""
    parts = [str(x) for x in loc if x != "[key]"]
    tables: list[str] = []
    node = data
    for p in parts[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(p), dict):
            break
        tables.append(p)
        node = node[p]
    key = ".".join(_toml_key(p) for p in parts[len(tables) :]) or "config"
    return (f"[{'.'.join(_toml_key(t) for t in tables)}] " if tables else ""), key


def _suggest(loc: tuple, section: bool = False) -> str:
    """'; did you mean X?' for an unknown key (or section), from those valid where it was written."""
    *parent, bad = [str(x) for x in loc]
    if section:
        valid = [f"[{s}]" for s in _SECTIONS]
        bad = f"[{bad}]"
    elif not parent:
        valid = list(KakashiConfig.model_fields)
    elif len(parent) == 1 and parent[0] in _SECTIONS:
        valid = list(_SECTIONS[parent[0]].model_fields)
    else:
        return ""
    near = difflib.get_close_matches(bad, valid, n=1, cutoff=0.6)
    return f"; did you mean {near[0]}?" if near else f"; valid: {', '.join(valid)}"


def _one_line(e: ValidationError, where: str, data: Any = None) -> str:
    first = e.errors()[0]
    section, key = _place(first["loc"], data)
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    if first["type"] == "extra_forbidden":
        if isinstance(first["input"], dict):  # a table the file opened: [Risk], [risk.sub]
            table = f"{section.strip()[1:-1]}.{key}" if section else key
            return f"{where}: [{table}]: unknown section{_suggest(first['loc'], section=not section)}{more}"
        return f"{where}: {section}{key}: unknown key{_suggest(first['loc'])}{more}"
    msg = first["msg"].removeprefix("Value error, ")
    inp = first.get("input")
    # Numbers are echoed (`= inf`); text never is, nor anything given for a credential.
    secret = any(w in key for w in _SECRET_WORDS)
    shown = f" = {inp}" if isinstance(inp, _NUMBERS) and not isinstance(inp, bool) and not secret else ""
    return f"{where}: {section}{key}{shown}: {msg}{more}"


def load_config(path: str | None = None) -> KakashiConfig:
    """Defaults, or the TOML file given (argument, then ``KAKASHI_CONFIG``)."""
    path = path or os.environ.get("KAKASHI_CONFIG") or None
    data: dict = {}
    where = "defaults"
    if path:
        p = Path(path)
        where = str(p)
        try:
            raw = read_regular(p, MAX_CONFIG_BYTES)  # a pipe or device: refused, never waited on
        except OSError as e:
            raise ConfigError(f"cannot read config {p}: {e.strerror}") from e
        except ValueError as e:  # e.g. an embedded NUL in the path
            raise ConfigError(f"cannot read config {str(p)!r}: {e}") from None
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"config {p} is larger than {MAX_CONFIG_BYTES // 1024} KiB: not a configuration")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as e:  # TOMLDecodeError, UnicodeDecodeError, 5,000 digits, [[[[...
            why = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
            raise ConfigError(f"config {p} is not valid TOML: {why}") from None
    try:
        cfg = KakashiConfig.model_validate(data)
        cfg.engine_config()  # the risk limits are checked against the core's ceilings here too
    except ValidationError as e:
        raise ConfigError(_one_line(e, where, data)) from None
    if path and cfg.kalshi.api_key_id is not None and Path(path).stat().st_mode & 0o077:
        raise ConfigError(f"{path} holds credentials but others can read it: chmod 600 {path}")
    return cfg


# -- the settings a recording keeps (the catalog's ``runs``, issue #23) ----------------------------
#: The sections whose every key changes what a run decides or how its orders fill, beside the
#: bankroll (its sizes). A recording run keeps them as they were (``recorded_settings``: the
#: catalog's ``runs``); a replay says which of its own differ (``recorded_notes``), or adopts them
#: (``adopt_recorded``: ``kakashi replay --recorded-settings``).
RECORDED_SECTIONS = ("strategy", "fills", "risk", "fees")


def _recorded_keys() -> list[tuple[str | None, str]]:
    """(section, key) of every recorded setting; section None: a top-level key."""
    return [(None, "bankroll"), *((sec, k) for sec in RECORDED_SECTIONS for k in _SECTIONS[sec].model_fields)]


def toml_value(v: Any) -> str | None:
    """A setting's value as a TOML file writes it (None: unset)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string
    if isinstance(v, Mapping):
        pairs = (f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(x)}" for k, x in v.items())
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(f"no TOML text for {type(v).__name__}")


def recorded_settings(cfg: KakashiConfig) -> dict[str, str]:
    """The settings that change a run's decisions and fills, as they are: ``"strategy.mode"``
    (``"bankroll"``) -> its TOML value text (``'"post"'``); an unset one is absent."""
    out: dict[str, str] = {}
    for sec, key in _recorded_keys():
        text = toml_value(getattr(cfg if sec is None else getattr(cfg, sec), key))
        if text is not None:
            out[key if sec is None else f"{sec}.{key}"] = text
    return out


def _recorded_part(sec: str | None, recorded: Mapping[str, str]) -> Any:
    """A section (or, for None, the bankroll) as a recording's settings give it (a key absent: its
    default, as a recording before it had it), or None when this Kakashi cannot read them."""
    prefix = "" if sec is None else f"{sec}."
    data: dict[str, Any] = {}
    for dotted, text in recorded.items():
        if dotted.startswith(prefix) and (sec is not None or "." not in dotted):
            try:
                data[dotted.removeprefix(prefix)] = tomllib.loads(f"v = {text}")["v"]
            except (ValueError, RecursionError, KeyError):
                return None
    try:
        if sec is None:
            return KakashiConfig.model_validate({k: v for k, v in data.items() if k == "bankroll"}).bankroll
        return _SECTIONS[sec].model_validate({k: v for k, v in data.items() if k in _SECTIONS[sec].model_fields})
    except ValidationError:
        return None


def _setting_name(sec: str | None, key: str) -> str:
    return key if sec is None else f"[{sec}] {key}"


def recorded_notes(runs: list[Mapping[str, str]], cfg: KakashiConfig) -> list[str]:
    """One line per setting where ``cfg`` differs from what the recorded ``runs`` (in time order)
    traded with: ``the recording traded with [strategy] mode = "post"; this replay uses "take"``.
    A key a recording lacks counts as its default; one this Kakashi does not know is said too."""
    lines: list[str] = []
    parts = [{sec: _recorded_part(sec, r) for sec in (None, *RECORDED_SECTIONS)} for r in runs]
    for sec, key in _recorded_keys():
        dotted = key if sec is None else f"{sec}.{key}"
        mine = getattr(cfg if sec is None else getattr(cfg, sec), key)
        theirs: list[str] = []  # the recorded values that differ from ours, as text, each once
        differs = False
        for r, part in zip(runs, parts, strict=True):
            p = part[sec]
            text = r.get(dotted)  # (shown as recorded)
            if p is None:  # unreadable here: compared as text
                differs |= text != toml_value(mine)
            else:
                value = p if sec is None else getattr(p, key)
                text = toml_value(value) if text is None else text  # (absent: its default)
                differs |= value != mine
            shown = "unset" if text is None else text
            if shown not in theirs:
                theirs.append(shown)
        if differs:
            was = ", then ".join(theirs)
            was = f" {was}" if was == "unset" else f" = {was}"
            now = toml_value(mine)
            lines.append(
                f"the recording traded with {_setting_name(sec, key)}{was}; "
                + (f"this replay uses {now}" if now is not None else "this replay leaves it unset")
            )
    known = {key if sec is None else f"{sec}.{key}" for sec, key in _recorded_keys()}
    for dotted in dict.fromkeys(k for r in runs for k in r if k not in known):
        lines.append(f"the recording traded with a setting this Kakashi does not have: {safe_text(dotted, 80)}")
    return lines


def adopt_recorded(cfg: KakashiConfig, recorded: Mapping[str, str]) -> KakashiConfig:
    """``cfg`` with the recorded settings in place of its own (``kakashi replay
    --recorded-settings``); a key the recording lacks takes its default. Settings this Kakashi
    cannot take (a limit past today's ceiling, a value it does not know) are refused in one line."""
    update: dict[str, Any] = {}
    for sec in (None, *RECORDED_SECTIONS):
        part = _recorded_part(sec, recorded)
        if part is None:
            what = "bankroll" if sec is None else f"[{sec}]"
            raise ConfigError(f"the recorded {what} settings are not ones this Kakashi can take")
        update["bankroll" if sec is None else sec] = part
    adopted = cfg.model_copy(update=update)
    try:
        adopted.engine_config()  # the risk limits against the core's ceilings
    except ValidationError as e:
        why = _one_line(e, "recorded")
        raise ConfigError(f"the recorded settings are not ones this Kakashi can take: {why}") from None
    return adopted


# -- settings: one order, resolved by pydantic-settings -------------------------------------------

T = TypeVar("T")

#: The environment variables Kakashi reads, one per setting, by exact name: no other spelling
#: (``kakashi_db``), no nested name (``KAKASHI_SIM__SEED``) and no ``.env`` file. ``KAKASHI_CONFIG``
#: is not among them: it names the config file, one of the layers (``load_config``).
ENVIRONMENT: dict[str, str] = {
    "db": "KAKASHI_DB",
    "api_base": "KAKASHI_API_BASE",
    "kalshi_key_id": "KAKASHI_KALSHI_KEY_ID",
    "kalshi_key_file": "KAKASHI_KALSHI_KEY_FILE",
    "seed": "KAKASHI_SEED",
}


@dataclass(frozen=True)
class Setting(Generic[T]):
    value: T
    origin: str  # "command line", "environment KAKASHI_DB", "config file", "database", "default"


class _Layer(PydanticBaseSettingsSource):
    """Settings read and checked elsewhere (the config file's, the database's), named by where
    they came from. ``None`` is "not given"."""

    def __init__(self, settings_cls: type[BaseSettings], origin: str, values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self.origin = origin
        self.values = {k: v for k, v in values.items() if v is not None}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)

    def gives(self, name: str) -> str | None:
        return self.origin if name in self.values else None


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over exactly the names of ``ENVIRONMENT``
    (case-sensitive; a variable set empty is not given, as before). A key id read here is a
    ``SecretStr`` at once: no source's state holds it in clear."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, case_sensitive=True, env_ignore_empty=True)
        self.given: dict[str, Any] = {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = ENVIRONMENT.get(field_name)
        return (self.env_vars.get(name) if name else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        if isinstance(data.get("kalshi_key_id"), str):
            data["kalshi_key_id"] = SecretStr(data["kalshi_key_id"])
        self.given = data
        return data

    def gives(self, name: str) -> str | None:
        return f"environment {ENVIRONMENT[name]}" if name in self.given else None


def _given_by(sources: list[PydanticBaseSettingsSource], name: str) -> str:
    """The origin of a setting: the first source, in the order, that gives it."""
    for source in sources:
        if isinstance(source, InitSettingsSource):
            if name in source.init_kwargs:
                return "command line"
        elif isinstance(source, _Layer | _Environment) and (origin := source.gives(name)):
            return origin
    return "default"


#: What one resolution reads besides the command line: the config file's settings, the
#: database's, and the list its sources are recorded in (for their origins).
_RESOLVING: ContextVar[tuple[Mapping[str, Any], Mapping[str, Any], list[PydanticBaseSettingsSource]] | None] = (
    ContextVar("kakashi_settings", default=None)
)


def file_settings(cfg: KakashiConfig) -> dict[str, Any]:
    """What the config file gives, by setting (``None``: not given). A key the file leaves to
    its default is not "from the config file"."""
    sim = cfg.sim.model_fields_set
    return {
        "db": cfg.db if "db" in cfg.model_fields_set else None,
        "api_base": cfg.kalshi.api_base,
        "kalshi_key_id": cfg.kalshi.api_key_id,
        "kalshi_key_file": cfg.kalshi.private_key_file or None,
        "beliefs": cfg.kalshi.beliefs or None,
        "catalog": cfg.catalog.dir or None,
        "seed": cfg.sim.seed if "seed" in sim else None,
        "markets": cfg.sim.markets if "markets" in sim else None,
        "step_ms": cfg.sim.step_seconds * 1000 if "step_seconds" in sim else None,
        "bracket_events": cfg.sim.bracket_events if "bracket_events" in sim else None,
    }


class Settings(BaseSettings):
    """The settings more than one place can give, each resolved once in one order: command line >
    environment > config file > what the database remembers > default (``settings_customise_sources``).
    Build with ``Settings.resolve``, which also records where each value came from (``origin``).
    The rest of the configuration has one place, the config file (``KakashiConfig``)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    db: str = KakashiConfig.model_fields["db"].default
    api_base: str | None = None  # (None: Kalshi's production API) checked where used, naming its origin
    kalshi_key_id: SecretStr | None = None  # never logged, stored or reported
    kalshi_key_file: str | None = None
    beliefs: str | None = None
    catalog: str | None = None  # None: catalog/ beside the database
    seed: int = Field(default=SimSection.model_fields["seed"].default, ge=0, le=MAX_SEED)
    markets: int = SimSection.model_fields["markets"].default
    step_ms: int = SimSection.model_fields["step_seconds"].default * 1000
    bracket_events: int = SimSection.model_fields["bracket_events"].default

    _origins: dict[str, str] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest first: the command line (the arguments ``resolve`` passes), the environment,
        the config file, the database; pydantic-settings puts the defaults last. No ``.env`` file
        and no secrets folder is read (Kakashi never read them)."""
        file, remembered, sources = _RESOLVING.get() or ({}, {}, [])
        sources[:] = [
            init_settings,
            _Environment(settings_cls),
            _Layer(settings_cls, "config file", file),
            _Layer(settings_cls, "database", remembered),
        ]
        return tuple(sources)

    @classmethod
    def resolve(
        cls, command_line: Mapping[str, Any], cfg: KakashiConfig, remembered: Mapping[str, Any] | None = None
    ) -> Settings:
        """The settings from the command line's values (``None``: not given), the environment,
        ``cfg`` and what the database ``remembered``; a bad one is a one-line ConfigError naming
        where it came from (never its text)."""
        sources: list[PydanticBaseSettingsSource] = []
        token = _RESOLVING.set((file_settings(cfg), remembered or {}, sources))
        try:
            settings = cls(**{k: v for k, v in command_line.items() if v is not None})
        except ValidationError as e:
            first = e.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else "settings"
            origin = _given_by(sources, name)
            inp = first.get("input")
            shown = f" = {inp}" if isinstance(inp, _NUMBERS) and not isinstance(inp, bool) else ""
            where = origin if origin.startswith("environment ") else f"{origin}: {name}"
            raise ConfigError(f"{where}{shown}: {first['msg'].removeprefix('Value error, ')}") from None
        finally:
            _RESOLVING.reset(token)
        settings._origins = {name: _given_by(sources, name) for name in cls.model_fields}
        return settings

    def origin(self, name: str) -> str:
        return self._origins.get(name, "default")

    def setting(self, name: str) -> Setting[Any]:
        return Setting(getattr(self, name), self.origin(name))
