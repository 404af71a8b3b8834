"""Configuration: YAML file + `POLYCOPY_*` environment overrides, validated into frozen models,
then resolved per leader into `EffectiveLeaderConfig` (SPEC §3).

Every problem is reported with the key path it concerns, e.g. `leaders[1].budget_usdc`.
Secrets never live here: they come from the environment or a credentials file (`secrets.py`).
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from polycopy.domain.reasons import Enforcement, Mode
from polycopy.domain.settings import EffectiveLeaderConfig, NettingRules, Rails

DEFAULT_CONFIG_PATH = Path("config/polycopy.yaml")
ENV_PREFIX = "POLYCOPY_"
ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")

# Environment names that are not configuration keys: secrets, process plumbing, test hooks.
NON_CONFIG_ENV = frozenset(
    {
        "POLYCOPY_CONFIG",
        "POLYCOPY_PRIVATE_KEY",
        "POLYCOPY_PRIVATE_KEY_FILE",
        "POLYCOPY_WALLET",
        "POLYCOPY_API_KEY",
        "POLYCOPY_API_SECRET",
        "POLYCOPY_API_PASSPHRASE",
        "POLYCOPY_CREDENTIALS_FILE",
        "POLYCOPY_STATUS_TOKEN",
        "POLYCOPY_LOG_LEVEL",
        "POLYCOPY_LOG_FORMAT",
        "POLYCOPY_CRASH_AT",
    }
)


class ConfigError(Exception):
    """Invalid configuration: refuse to start, or reject a reload. Carries one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


# --- value types ------------------------------------------------------------------------
def _decimal_from_yaml(value: Any) -> Any:
    # YAML floats would otherwise carry binary noise; their shortest repr is what was written.
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _on_off(value: Any) -> Any:
    # YAML 1.1 reads bare ON/OFF as booleans; they mean the same as the quoted words.
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return _upper(value)


Money = Annotated[Decimal, BeforeValidator(_decimal_from_yaml), Field(ge=0, allow_inf_nan=False)]
Rate = Annotated[Decimal, BeforeValidator(_decimal_from_yaml), Field(ge=0, allow_inf_nan=False)]
Seconds = Annotated[Decimal, BeforeValidator(_decimal_from_yaml), Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[Decimal, BeforeValidator(_decimal_from_yaml), Field(allow_inf_nan=False)]


class OnOff(StrEnum):
    ON = "ON"
    OFF = "OFF"


class ModeOverride(StrEnum):
    INHERIT = "INHERIT"
    FIXED_RATE = "FIXED_RATE"
    BUDGETED_DYNAMIC = "BUDGETED_DYNAMIC"


class EnforcementOverride(StrEnum):
    INHERIT = "INHERIT"
    HARD = "HARD"
    SOFT = "SOFT"


class OrderType(StrEnum):
    FAK = "FAK"
    FOK = "FOK"


ModeField = Annotated[Mode, BeforeValidator(_upper)]
EnforcementField = Annotated[Enforcement, BeforeValidator(_upper)]
ModeOverrideField = Annotated[ModeOverride, BeforeValidator(_upper)]
EnforcementOverrideField = Annotated[EnforcementOverride, BeforeValidator(_upper)]
OnOffField = Annotated[OnOff, BeforeValidator(_on_off)]
OrderTypeField = Annotated[OrderType, BeforeValidator(_upper)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- sections -----------------------------------------------------------------------------
class SizingSection(Section):
    sizing_mode_default: ModeField = Mode.FIXED_RATE
    fixed_copy_rate_default: Rate = Decimal("0.01")
    budgeted_dynamic_enabled: bool = True
    budget_r_min_default: Rate = Decimal("0")
    budget_r_max_default: Rate = Decimal("0.05")
    budget_enforcement_default: EnforcementField = Enforcement.HARD


class RailsSection(Section):
    min_leader_trade_notional_usdc: Money = Decimal("0")
    min_exec_notional_usdc: Money = Decimal("1.00")
    max_exec_notional_usdc: Money = Decimal("25")
    max_trade_pct_bankroll: Fraction = Decimal("0.10")
    max_price_per_share: Fraction = Decimal("0.97")


class RailsOverride(Section):
    min_leader_trade_notional_usdc: Money | None = None
    min_exec_notional_usdc: Money | None = None
    max_exec_notional_usdc: Money | None = None
    max_trade_pct_bankroll: Fraction | None = None
    max_price_per_share: Fraction | None = None


class NettingSection(Section):
    small_trade_netting_mode: OnOffField = OnOff.OFF
    small_trade_min_exec_notional_usdc: Money = Decimal("0.50")
    netting_window_s: Seconds = Decimal("2")


class NettingOverride(Section):
    small_trade_netting_mode: OnOffField | None = None
    small_trade_min_exec_notional_usdc: Money | None = None
    netting_window_s: Seconds | None = None


class EndpointsSection(Section):
    data_api_url: str = "https://data-api.polymarket.com"
    clob_url: str = "https://clob.polymarket.com"
    rtds_url: str = "wss://ws-live-data.polymarket.com"
    clob_ws_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws"


class StatusSection(Section):
    listen: str = "127.0.0.1:9464"


class ExecutionSection(Section):
    max_slippage: Money = Decimal("0.02")  # price bound: leader price ± this, on the tick grid
    order_type: OrderTypeField = OrderType.FAK
    # every network await has a timeout; POST /order's timeout makes the outcome ambiguous
    venue_http_timeout_s: Seconds = Decimal("5")
    order_timeout_s: Seconds = Decimal("10")
    # idempotent GETs: retries after the first attempt, backoff cap and total deadline
    venue_get_retries: int = Field(default=4, ge=0, le=20)
    venue_backoff_max_s: Seconds = Decimal("2")
    venue_retry_deadline_s: Seconds = Decimal("15")
    # POST /order refused before processing (429, engine restart): resends of the same bytes
    order_resend_max: int = Field(default=2, ge=0, le=10)
    # after an ambiguous POST: look-ups by order hash before reporting EXEC_UNKNOWN
    unknown_lookup_attempts: int = Field(default=3, ge=1, le=20)
    # an order the venue has never heard of, this long after signing and on this many
    # look-ups in a row, was not accepted
    unknown_close_after_s: Seconds = Decimal("120")
    unknown_close_lookups: int = Field(default=3, ge=1, le=100)
    # a matched order whose trades are still not all visible this long after signing alerts
    # (it stays open: it is never closed short of its fills)
    fills_missing_alert_s: Seconds = Decimal("300")
    # an order's trades are looked for in [signed − 300 s, signed + this], at most this many
    # pages; hitting the bound keeps the order open, never reads as "no fill"
    trade_window_s: Seconds = Decimal("900")
    trade_pages_max: int = Field(default=20, ge=1, le=1000)
    # how long to wait for the trades of an accepted order to show up in /data/trades
    fill_wait_s: Seconds = Decimal("5")
    # live: read /book first and skip (0 POSTs) when nothing can fill within the bound (R29)
    book_precheck: bool = True
    # books of the traded tokens kept live from the CLOB market channel (paper fills and the
    # live pre-check read them there instead of GET /book; tick changes come with them)
    book_stream: bool = True
    # market metadata (tick, minimums, neg-risk, fees) is re-read at least this often
    market_cache_ttl_s: Seconds = Decimal("300")


Interval = Annotated[Decimal, BeforeValidator(_decimal_from_yaml), Field(gt=0, allow_inf_nan=False)]


# Data API limits per 10 s (reference §1.7): 1000 requests in general, 150 to /positions.
# Against the venue the client-side limits may be at most 90 % of them (R16: below the venue,
# with a margin); a Data API on a loopback address (the simulator) has no such limit.
VENUE_RATE_LIMITS_PER_10S = {
    "rest_rate_limit_per_10s": 1000,
    "positions_rate_limit_per_10s": 150,
}
VENUE_RATE_LIMIT_SHARE = Decimal("0.9")


class IngestSection(Section):
    """Leader trade detection (README "Ingest"). Venue limits: Data API 1000 req/10 s in
    general, /positions 150 req/10 s; the client stays below them."""

    max_event_age_s: Seconds = Decimal("60")  # a BUY older than this at dequeue: STALE_EVENT
    exposure_refresh_s: Interval = Decimal("30")  # E_u and P re-read per leader
    queue_maxsize: int = Field(default=10_000, ge=1)  # bounded hand-over queue to the worker
    poll_interval_s: Interval = Decimal("5")  # REST backfill of every leader, websocket or not
    ws_stall_s: Interval = Decimal("15")  # no data frame for this long: reconnect + backfill
    ws_ping_interval_s: Interval = Decimal("5")  # application PING on the RTDS socket
    ws_backoff_initial_s: Interval = Decimal("0.5")  # reconnect backoff, full jitter …
    ws_backoff_max_s: Interval = Decimal("30")  # … capped here
    backfill_overlap_s: Seconds = Decimal("120")
    poll_overlap_s: Seconds = Decimal(
        "15"
    )  # look-back of the periodic poll, websocket healthy  # REST window starts at cursor − this
    max_backfill_age_s: Interval = Decimal("86400")  # never backfill further back than this
    backfill_concurrency: int = Field(default=4, ge=1, le=64)  # leaders backfilled at once
    rest_rate_limit_per_10s: int = Field(default=500, ge=1)  # all Data API requests
    positions_rate_limit_per_10s: int = Field(default=100, ge=1)  # /positions requests
    rest_max_attempts: int = Field(default=4, ge=1, le=20)  # per idempotent GET
    rest_timeout_s: Interval = Decimal("10")  # per attempt
    rest_deadline_s: Interval = Decimal("30")  # all attempts of one GET
    rest_backoff_initial_s: Interval = Decimal("0.5")  # retry backoff, full jitter …
    rest_backoff_max_s: Interval = Decimal("10")  # … capped here (Retry-After wins)


class RiskSection(Section):
    max_daily_loss_usdc: Money | None = None
    # what a breach trips: HALTED sends nothing; REDUCING buys nothing but mirrors exits.
    # PnL that cannot be computed always HALTs.
    daily_loss_state: Literal["HALTED", "REDUCING"] = "HALTED"


class DaemonSection(Section):
    shutdown_timeout_s: Seconds = Decimal("30")  # drain and settle bound on SIGTERM
    mark_refresh_s: Seconds = Decimal("30")  # how often held tokens are re-marked (book mid)
    mark_stale_s: Seconds = Decimal("180")  # PnL is unknown when marks are older (R25)
    resolve_interval_s: Seconds = Decimal("10")  # re-ask the venue about unknown orders
    ingest_stale_s: Seconds = Decimal("60")  # /healthz fails after this long without data
    # /healthz fails when the sizing worker made no progress for this long (an order that
    # takes its full timeout and fill wait keeps it waiting well below this)
    worker_stall_s: Seconds = Decimal("60")
    recent_decisions: int = Field(default=20, ge=0, le=500)  # kept for /status
    max_inflight_orders: int = Field(default=16, ge=1, le=256)  # orders executing at once


class LeaderSection(Section):
    address: str
    name: str = ""
    enabled: bool = True
    sizing_mode_override: ModeOverrideField = ModeOverride.INHERIT
    fixed_copy_rate: Rate | None = None
    budget_usdc: Money | None = None
    budget_r_min: Rate | None = None
    budget_r_max: Rate | None = None
    budget_enforcement: EnforcementOverrideField = EnforcementOverride.INHERIT
    rails: RailsOverride = RailsOverride()
    netting: NettingOverride = NettingOverride()


class PolycopyConfig(BaseSettings):
    """The whole configuration file. Frozen: a reload builds a new one."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    mode: Literal["paper", "live"] = "paper"
    bankroll_usdc: Money = Decimal("200")
    state_dir: Path = Path("./state")
    sizing: SizingSection = SizingSection()
    rails: RailsSection = RailsSection()
    netting: NettingSection = NettingSection()
    endpoints: EndpointsSection = EndpointsSection()
    status: StatusSection = StatusSection()
    execution: ExecutionSection = ExecutionSection()
    ingest: IngestSection = IngestSection()
    risk: RiskSection = RiskSection()
    daemon: DaemonSection = DaemonSection()
    leaders: list[LeaderSection] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment overrides the file; nothing else is read (no .env, no secrets dir).
        return (FlatEnvSource(settings_cls), init_settings)


# --- environment overrides ----------------------------------------------------------------
SECTIONS: dict[str, type[Section]] = {
    "sizing": SizingSection,
    "rails": RailsSection,
    "netting": NettingSection,
    "endpoints": EndpointsSection,
    "status": StatusSection,
    "execution": ExecutionSection,
    "ingest": IngestSection,
    "risk": RiskSection,
    "daemon": DaemonSection,
}
TOP_LEVEL_KEYS = ("mode", "bankroll_usdc", "state_dir")


def env_key_map() -> dict[str, tuple[str, ...]]:
    """`POLYCOPY_<KEY>` → path in the file, for every global key (`status.listen` is
    `POLYCOPY_STATUS_LISTEN`, since a bare LISTEN would say nothing)."""
    mapping: dict[str, tuple[str, ...]] = {}
    for key in TOP_LEVEL_KEYS:
        mapping[ENV_PREFIX + key.upper()] = (key,)
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            name = ENV_PREFIX + (f"{section}_{key}" if section == "status" else key).upper()
            if name in mapping:  # a key name used by two sections could not be told apart
                raise AssertionError(f"{name} names both {mapping[name]} and {(section, key)}")
            mapping[name] = (section, key)
    return mapping


# Lets `parse_config` validate against a given environment (tests, reload) instead of os.environ.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("polycopy_environ", default=None)


class FlatEnvSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        given = _ENVIRON.get()
        self._environ: Mapping[str, str] = os.environ if given is None else given

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole mapping

    def __call__(self) -> dict[str, Any]:
        mapping = env_key_map()
        values: dict[str, Any] = {}
        unknown = []
        for name, raw in self._environ.items():
            if not name.startswith(ENV_PREFIX) or name in NON_CONFIG_ENV:
                continue
            path = mapping.get(name)
            if path is None:
                unknown.append(name)
                continue
            target = values
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = raw
        if unknown:
            raise ConfigError([f"{name}: unknown environment variable" for name in sorted(unknown)])
        return values


# --- loading ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration with its per-leader resolution and version hash."""

    settings: PolycopyConfig
    version: str
    leaders: dict[str, EffectiveLeaderConfig]  # enabled leaders only, by lower-case address
    disabled: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None


def load_config(
    path: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Read, validate and resolve. Raises ConfigError naming every problem found."""
    file_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    data = _read_yaml(file_path)
    return parse_config(data, environ=environ, path=file_path)


def parse_config(
    data: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> LoadedConfig:
    token = _ENVIRON.set(environ)
    try:
        settings = PolycopyConfig(**data)  # sources: POLYCOPY_* environment over the file
    except ValidationError as exc:
        problems = _describe(exc)
        raise ConfigError(problems + _rules_broken_elsewhere(data, exc)) from None
    finally:
        _ENVIRON.reset(token)
    problems = semantic_problems(settings)
    if problems:
        raise ConfigError(problems)
    version = config_version(settings)
    leaders = {}
    disabled = []
    for leader in settings.leaders:
        effective = resolve_leader(settings, leader, version)
        if leader.enabled:
            leaders[effective.address] = effective
        else:
            disabled.append(effective.address)
    return LoadedConfig(
        settings=settings,
        version=version,
        leaders=leaders,
        disabled=tuple(disabled),
        warnings=semantic_warnings(settings),
        path=path,
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError([f"{path}: {problem}{where}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys"])
    return data


def key_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if not _is_validator_tag(p))
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{key_path(loc)}: {message}")
    return problems


def _rules_broken_elsewhere(data: Mapping[str, Any], exc: ValidationError) -> list[str]:
    """The cross-field rules, checked on the rest of a file that has type errors, so that one
    run of `check-config` names every problem. The keys in error are left out (defaults take
    their place) and rules that involve them are not reported: they would be guesses."""
    pruned = copy.deepcopy(dict(data))
    removed: list[tuple[int | str, ...]] = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if not _is_validator_tag(p))
        if error["type"] == "missing" or not _delete(pruned, loc):
            return []  # a required key is absent (or came from the environment): no model
        removed.append(loc)
    try:
        partial = PolycopyConfig(**pruned)
    except ValidationError:
        return []
    return [p for p in semantic_problems(partial) if not _involves(p, removed)]


def _delete(data: Any, loc: tuple[int | str, ...]) -> bool:
    for part in loc[:-1]:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(data, dict) and loc and loc[-1] in data:
        del data[loc[-1]]
        return True
    return False


def _involves(problem: str, removed: list[tuple[int | str, ...]]) -> bool:
    where = problem.split(":", 1)[0]
    for loc in removed:
        path = key_path(loc)
        section = path.rsplit(".", 1)[0] if "." in path else ""
        if where.startswith(path) or (where.startswith(section) and str(loc[-1]) in problem):
            return True
    return False


def _is_validator_tag(part: int | str) -> bool:
    # pydantic puts function-validator names into locations of annotated fields
    return isinstance(part, str) and ("function-" in part or part.startswith("lax-or-strict"))


# --- cross-field rules ----------------------------------------------------------------------
def _ingest_rate_problems(cfg: PolycopyConfig) -> list[str]:
    if _is_loopback_url(cfg.endpoints.data_api_url):
        return []
    problems = []
    for key, venue in VENUE_RATE_LIMITS_PER_10S.items():
        value = getattr(cfg.ingest, key)
        most = int(venue * VENUE_RATE_LIMIT_SHARE)
        if value > most:
            problems.append(
                f"ingest.{key}: {value} is above {most}; the venue allows {venue} requests "
                "per 10 s and the client must stay below it"
            )
    return problems


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def semantic_problems(cfg: PolycopyConfig) -> list[str]:
    problems: list[str] = []
    sizing, rails = cfg.sizing, cfg.rails
    if sizing.budget_r_min_default > sizing.budget_r_max_default:
        problems.append(
            "sizing.budget_r_min_default: greater than sizing.budget_r_max_default "
            f"({sizing.budget_r_min_default} > {sizing.budget_r_max_default})"
        )
    problems += _rail_problems("rails", rails.model_dump())
    problems += _ingest_rate_problems(cfg)
    seen: dict[str, int] = {}
    for i, leader in enumerate(cfg.leaders):
        where = f"leaders[{i}]"
        if not ADDRESS_RE.match(leader.address):
            problems.append(f"{where}.address: not a 0x-prefixed 40-hex-digit address")
        else:
            lowered = leader.address.lower()
            if lowered in seen:
                problems.append(
                    f"{where}.address: duplicate of leaders[{seen[lowered]}].address ({lowered})"
                )
            else:
                seen[lowered] = i
        r_min = _pick(leader.budget_r_min, sizing.budget_r_min_default)
        r_max = _pick(leader.budget_r_max, sizing.budget_r_max_default)
        if r_min > r_max:
            problems.append(f"{where}.budget_r_min: effective r_min {r_min} > r_max {r_max}")
        effective_rails = {
            key: _pick(getattr(leader.rails, key), getattr(rails, key))
            for key in RailsSection.model_fields
        }
        overridden = {k: v for k, v in leader.rails.model_dump().items() if v is not None}
        problems += _rail_problems(f"{where}.rails", effective_rails, only=overridden)
        requested = (
            sizing.sizing_mode_default
            if leader.sizing_mode_override is ModeOverride.INHERIT
            else Mode(leader.sizing_mode_override.value)
        )
        if (
            requested is Mode.BUDGETED_DYNAMIC
            and sizing.budgeted_dynamic_enabled
            and leader.budget_usdc is None
        ):
            problems.append(f"{where}.budget_usdc: required when the leader is BUDGETED_DYNAMIC")
    return problems


def _rail_problems(
    where: str, values: Mapping[str, Decimal], only: Mapping[str, Any] | None = None
) -> list[str]:
    """Range and ordering rules of the rails; `only` limits reports to keys set at this level
    (plus the ordering rule, which concerns the effective values)."""
    problems = []

    def report(key: str) -> bool:
        return only is None or key in only

    price = values["max_price_per_share"]
    if report("max_price_per_share") and not (0 < price < 1):
        problems.append(f"{where}.max_price_per_share: must be inside (0, 1), got {price}")
    pct = values["max_trade_pct_bankroll"]
    if report("max_trade_pct_bankroll") and not (0 < pct <= 1):
        problems.append(f"{where}.max_trade_pct_bankroll: must be inside (0, 1], got {pct}")
    low, high = values["min_exec_notional_usdc"], values["max_exec_notional_usdc"]
    if low > high and (
        only is None or "min_exec_notional_usdc" in only or "max_exec_notional_usdc" in only
    ):
        problems.append(
            f"{where}.min_exec_notional_usdc: greater than max_exec_notional_usdc ({low} > {high})"
        )
    return problems


def semantic_warnings(cfg: PolycopyConfig) -> list[str]:
    warnings = []
    budgets = sum(
        (leader.budget_usdc for leader in cfg.leaders if leader.enabled and leader.budget_usdc),
        Decimal(0),
    )
    if budgets > cfg.bankroll_usdc:
        warnings.append(
            f"leaders: budgets add up to {budgets}, more than bankroll_usdc {cfg.bankroll_usdc}"
        )
    return warnings


def _pick(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


# --- resolution -----------------------------------------------------------------------------
def resolve_leader(
    cfg: PolycopyConfig, leader: LeaderSection, version: str
) -> EffectiveLeaderConfig:
    """Global → per-leader inheritance (SPEC §2.1)."""
    sizing = cfg.sizing
    requested = (
        sizing.sizing_mode_default
        if leader.sizing_mode_override is ModeOverride.INHERIT
        else Mode(leader.sizing_mode_override.value)
    )
    fell_back = requested is Mode.BUDGETED_DYNAMIC and not sizing.budgeted_dynamic_enabled
    mode = Mode.FIXED_RATE if fell_back else requested
    enforcement = (
        sizing.budget_enforcement_default
        if leader.budget_enforcement is EnforcementOverride.INHERIT
        else Enforcement(leader.budget_enforcement.value)
    )
    rails = Rails(
        **{
            key: _pick(getattr(leader.rails, key), getattr(cfg.rails, key))
            for key in RailsSection.model_fields
        }
    )
    netting_mode = leader.netting.small_trade_netting_mode or cfg.netting.small_trade_netting_mode
    netting = NettingRules(
        enabled=netting_mode is OnOff.ON,
        small_trade_min_exec_notional_usdc=_pick(
            leader.netting.small_trade_min_exec_notional_usdc,
            cfg.netting.small_trade_min_exec_notional_usdc,
        ),
        netting_window_s=_pick(leader.netting.netting_window_s, cfg.netting.netting_window_s),
    )
    address = leader.address.lower()
    return EffectiveLeaderConfig(
        address=address,
        name=leader.name or address[:10],
        mode=mode,
        mode_fell_back=fell_back,
        fixed_copy_rate=_pick(leader.fixed_copy_rate, sizing.fixed_copy_rate_default),
        budget_usdc=leader.budget_usdc,
        r_min=_pick(leader.budget_r_min, sizing.budget_r_min_default),
        r_max=_pick(leader.budget_r_max, sizing.budget_r_max_default),
        enforcement=enforcement,
        rails=rails,
        netting=netting,
        bankroll_usdc=cfg.bankroll_usdc,
        max_slippage=cfg.execution.max_slippage,
        enabled=leader.enabled,
        config_version=version,
    )


def config_version(cfg: PolycopyConfig) -> str:
    canonical = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


IMMUTABLE_KEYS = ("mode", "state_dir", "status")  # a reload that changes these is refused
# Keys a running daemon re-reads on SIGHUP; a change anywhere else takes a restart.
LIVE_KEYS = frozenset(
    {
        "bankroll_usdc",
        "sizing",
        "rails",
        "netting",
        "risk",
        "leaders",
        "execution.max_slippage",
        "ingest.max_event_age_s",
        # read by the daemon each time it needs them
        "daemon.shutdown_timeout_s",
        "daemon.mark_stale_s",
        "daemon.resolve_interval_s",
        "daemon.ingest_stale_s",
        "daemon.worker_stall_s",
        "daemon.max_inflight_orders",
    }
)


def _flat(cfg: PolycopyConfig) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in cfg.model_dump(mode="json").items():
        if isinstance(value, dict):
            for sub, item in value.items():
                flat[f"{key}.{sub}"] = item
        else:
            flat[key] = value
    return flat


def restart_required_changes(old: PolycopyConfig, new: PolycopyConfig) -> list[str]:
    """Changed keys that only take effect after a restart (reported on SIGHUP)."""
    before, after = _flat(old), _flat(new)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return [
        key
        for key in changed
        if key not in LIVE_KEYS
        and key.split(".")[0] not in LIVE_KEYS
        and key.split(".")[0] not in IMMUTABLE_KEYS
    ]


def immutable_changes(old: PolycopyConfig, new: PolycopyConfig) -> list[str]:
    """Changed keys a reload may not touch: mode (paper↔live), state_dir, status server."""
    return [key for key in IMMUTABLE_KEYS if getattr(old, key) != getattr(new, key)]
