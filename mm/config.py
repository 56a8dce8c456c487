"""Configuration: config.toml plus ``MM_<SECTION>__<KEY>`` overrides, structured into attrs classes.

Every problem is reported with its key path and reason (``admin.port: must be between 0 and
65535, got 70000``); unknown keys are errors. Secrets are never read from the file itself: the
file names an environment variable or a file that holds them (see ``resolve_secrets``).
"""

from __future__ import annotations

import hashlib
import itertools
import tomllib
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson

from mm.execution.flatten import FlattenConfig
from mm.execution.pretrade import PretradeConfig
from mm.execution.slots import ExecutorConfig
from mm.journal import JournalConfig
from mm.ops.autonomy import AutonomyConfig
from mm.ops.notifier import NotifySecrets, read_notify_secrets
from mm.ops.notify import NotifyConfig
from mm.ops.session import SessionConfig
from mm.portfolio import value_problem
from mm.risk.monitors import RiskConfig
from mm.secrets import Secret
from mm.settings import (
    CONVERTER,
    at_least,
    check_section,
    describe_structuring_error,
    is_loopback,
    join_path,
    non_empty,
    non_negative,
    one_of,
    port,
    positive,
    setting,
)
from mm.settings import (
    ConfigError as ConfigError,
)
from mm.strategies.market_maker.engine import StrategyConfig
from mm.strategies.triarb.config import TriarbConfig
from mm.venues.config import (
    DEV_API_KEY,
    DEV_PRIVATE_KEY,
    KINDS,
    PRIVATE_KEY,
    ApiCredentials,
    FeedsConfig,
    VenueConfig,
    dev_api_credentials,
    is_local_url,
)
from mm.venues.factory import RateLimitConfig, fills_listed_again
from mm.venues.sim.config import SimConfig

ENV_PREFIX = "MM_"
ENV_SEPARATOR = "__"
MIN_TOKEN_LENGTH = 16
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


# --- sections ----------------------------------------------------------------------------------


@attrs.frozen
class ServiceConfig:
    name: str = setting("mm", non_empty)
    run_dir: str = setting("run", non_empty)
    log_level: str = setting("INFO", one_of(*LOG_LEVELS))
    json_logs: bool = setting(True)
    log_rotation: str = setting("50 MB", non_empty)
    log_retention: int = setting(10, at_least(1))
    shutdown_timeout: float = setting(10.0, positive)


@attrs.frozen
class AdminConfig:
    host: str = setting("127.0.0.1", non_empty)
    port: int = setting(9400, port)
    token_env: str = setting("MM_ADMIN_TOKEN")
    token_file: str = setting("")


@attrs.frozen
class SupervisionConfig:
    backoff_initial: float = setting(0.5, positive)
    backoff_multiplier: float = setting(2.0, at_least(1))
    backoff_cap: float = setting(30.0, positive)
    stable_after: float = setting(30.0, non_negative)
    max_restarts: int = setting(5, non_negative)
    restart_period: float = setting(60.0, positive)


@attrs.frozen
class Config:
    service: ServiceConfig = ServiceConfig()
    admin: AdminConfig = AdminConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    journal: JournalConfig = attrs.field(factory=JournalConfig)
    venue: VenueConfig = attrs.field(factory=VenueConfig)
    feeds: FeedsConfig = attrs.field(factory=FeedsConfig)
    rate_limit: RateLimitConfig = attrs.field(factory=RateLimitConfig)
    strategy: StrategyConfig = attrs.field(factory=StrategyConfig)
    # Triangular arbitrage (strategy.kind = "triarb"): its triangles, slots, legs and limits.
    triarb: TriarbConfig = attrs.field(factory=TriarbConfig)
    executor: ExecutorConfig = attrs.field(factory=ExecutorConfig)
    risk: RiskConfig = attrs.field(factory=RiskConfig)
    pretrade: PretradeConfig = attrs.field(factory=PretradeConfig)
    session: SessionConfig = attrs.field(factory=SessionConfig)
    flatten: FlattenConfig = attrs.field(factory=FlattenConfig)
    autonomy: AutonomyConfig = attrs.field(factory=AutonomyConfig)
    notify: NotifyConfig = attrs.field(factory=NotifyConfig)
    sim: SimConfig = attrs.field(factory=SimConfig)
    base_dir: Path = attrs.field(default=Path("."), metadata={"internal": True})

    @property
    def run_dir(self) -> Path:
        return (self.base_dir / self.service.run_dir).resolve()

    @property
    def hash(self) -> str:
        """A short, stable fingerprint of the effective configuration (``config_hash``)."""
        return config_hash(self)


def _parse_env_value(raw: str) -> Any:
    """An override's value as a TOML literal (``9500``, ``true``, ``"x"``), else a plain string."""
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(environ: Mapping[str, str]) -> dict[str, tuple[list[str], Any]]:
    """``MM_SECTION__KEY=value`` variables as {variable: (key path, value)}."""
    overrides: dict[str, tuple[list[str], Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or ENV_SEPARATOR not in name:
            continue
        parts = [part.lower() for part in name[len(ENV_PREFIX) :].split(ENV_SEPARATOR)]
        if all(parts):
            overrides[name] = (parts, _parse_env_value(raw))
    return overrides


def _apply_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    for name, (keys, value) in sorted(env_overrides(environ).items()):
        table = data
        for depth, key in enumerate(keys[:-1]):
            nested = table.setdefault(key, {})
            if not isinstance(nested, dict):
                problems.append(f"{'.'.join(keys[: depth + 1])} (from {name}): is not a table")
                break
            table = nested
        else:
            table[keys[-1]] = value
    return problems


def _tables(data: Mapping[str, Any], cls: type, path: str) -> list[str]:
    """Sections (attrs classes) must be given as TOML tables."""
    problems: list[str] = []
    for name, kind in typing.get_type_hints(cls).items():
        if name in data and isinstance(kind, type) and attrs.has(kind):
            value = data[name]
            key = join_path(path, name)
            if isinstance(value, Mapping):
                problems.extend(_tables(value, kind, key))
            else:
                problems.append(f"{key}: expected a table, got {value!r}")
    return problems


def structure(data: Mapping[str, Any], base_dir: Path = Path(".")) -> Config:
    """A Config from plain data (a parsed TOML document), or ConfigError naming every problem."""
    document = dict(data)
    if "base_dir" in document:
        raise ConfigError(["base_dir: unknown key"])
    problems = _tables(document, Config, "")
    if problems:
        raise ConfigError(problems)
    try:
        config = CONVERTER.structure(document, Config)
    except Exception as error:  # cattrs groups every problem into one exception
        raise ConfigError(describe_structuring_error(error, "")) from None
    problems = check_section(config, "") + _cross_checks(config)
    if problems:
        raise ConfigError(problems)
    return attrs.evolve(config, base_dir=base_dir)


def _cross_checks(config: Config) -> list[str]:
    """Rules that span keys or live in lists (which check_section does not descend into)."""
    problems = config.session.problems("session") + config.notify.cross_problems("notify")
    problems += config.sim.problems("sim")
    session = config.session
    if not session.default_open:
        tracked = {symbol for track in session.tracks for symbol in track.symbols}
        for index, symbol in enumerate(config.strategy.symbols):
            if symbol not in tracked:
                problems.append(
                    f"strategy.symbols[{index}]: {symbol!r} is in no session track and "
                    "session.default_open is false, so it would never trade: add it to a "
                    "[[session.tracks]] entry"
                )
    problems.extend(staleness_ladder_problems(config))
    problems.extend(_triarb_problems(config))
    autonomy = config.autonomy
    if autonomy.max_drawdown >= config.risk.max_drawdown:
        problems.append(
            f"autonomy.max_drawdown: must be below risk.max_drawdown ({config.risk.max_drawdown})"
            f" so that HALT acts before the kill switch, got {autonomy.max_drawdown}"
        )
    listed_again = (
        fills_listed_again(config.venue, config.feeds.user.max_fill_pages)
        if config.venue.kind in KINDS
        else 0
    )
    if config.feeds.user.dedup_capacity < listed_again:
        problems.append(
            f"feeds.user.dedup_capacity: must be at least {listed_again}, the fills "
            f"{config.venue.kind} can list again (a catch-up lists them all, and a fill "
            f"forgotten before it is listed again is counted twice), "
            f"got {config.feeds.user.dedup_capacity}"
        )
    # A fill the user stream dropped reaches the liquidation detector through the fill audit
    # that the drift runs: up to audit_drift_gap_s later, and its read can lose its WebSocket
    # reply and be asked again over REST after post_timeout_s (campaign seed 122 of the
    # 1,000: recovered 5.18 s after the jump, against a 5 s window: the kill switch tripped).
    recovery_s = config.feeds.user.audit_drift_gap_s + config.feeds.connection.post_timeout_s
    if config.risk.liquidation_fill_window_s <= recovery_s:
        problems.append(
            f"risk.liquidation_fill_window_s: must be longer than feeds.user.audit_drift_gap_s"
            f" plus feeds.connection.post_timeout_s ({recovery_s:g} s), the time a fill the"
            f" stream dropped may take to be recovered by the fill audit (a position change it"
            f" explains would be taken for a forced liquidation),"
            f" got {config.risk.liquidation_fill_window_s}"
        )
    if autonomy.margin_warning >= autonomy.margin_reduce_only:
        problems.append(
            f"autonomy.margin_warning: must be below autonomy.margin_reduce_only "
            f"({autonomy.margin_reduce_only}), got {autonomy.margin_warning}"
        )
    return problems


def _triarb_problems(config: Config) -> list[str]:
    """What triangular arbitrage needs of the rest of the config (when it is the kind)."""
    if config.strategy.kind != "triarb":
        return []
    triarb = config.triarb
    problems = triarb.limits.problems(triarb.primaries)
    if config.venue.kind != "kucoin":
        problems.append(
            f"strategy.kind: triarb trades spot triangles, which venue.kind "
            f"{config.venue.kind!r} does not list (use kucoin)"
        )
    if triarb.leg_order == "market" and not triarb.paper:
        problems.append(
            "triarb.leg_order: live legs are IOC limits (the order router tracks limit orders "
            'only); "market" is for paper mode'
        )
    symbols = config.strategy.symbols
    if len(symbols) < 3:
        problems.append(
            f"strategy.symbols: a triangle needs at least three pairs, got {len(symbols)}"
        )
    malformed = [symbol for symbol in symbols if symbol.count("-") != 1]
    if malformed:
        problems.append(
            f"strategy.symbols: triarb follows spot pairs (BASE-QUOTE), got {malformed}"
        )
    else:
        pairs = {symbol: (symbol.split("-")[0], symbol.split("-")[1]) for symbol in symbols}
        unvalued = value_problem(pairs)
        if unvalued is not None:
            problems.append(f"strategy.symbols: {unvalued}")
    return problems


def staleness_ladder(config: Config) -> list[tuple[str, float]]:
    """The staleness limits (key, seconds), in the order they must act: pull a symbol, flag it
    stale, REDUCE_ONLY on a majority gap, KILL (config.toml documents the ladder)."""
    return [
        ("strategy.max_book_age_s", config.strategy.max_book_age_s),
        ("feeds.market.quality.max_age_ms", config.feeds.market.quality.max_age_ms / 1000),
        ("autonomy.feed_gap_s", config.autonomy.feed_gap_s),
        ("risk.stale_threshold_s", config.risk.stale_threshold_s),
    ]


def staleness_ladder_problems(config: Config) -> list[str]:
    ladder = staleness_ladder(config)
    problems = []
    for (shorter, low), (key, high) in itertools.pairwise(ladder):
        if high <= low:
            problems.append(
                f"{key}: must be longer than {shorter} ({low:g} s) in the staleness ladder, "
                f"got {high:g} s"
            )
    return problems


def load_config(path: Path, environ: Mapping[str, str]) -> Config:
    """Read ``path``, apply environment overrides, structure and check it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"{path}: cannot read config file: {error.strerror or error}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: invalid TOML: {error}"]) from None
    problems = _apply_overrides(data, environ)
    if problems:
        raise ConfigError(problems)
    try:
        return structure(data, base_dir=path.resolve().parent)
    except ConfigError as error:
        raise ConfigError([_name_source(line, environ) for line in error.errors]) from None


def _name_source(line: str, environ: Mapping[str, str]) -> str:
    """Say which environment variable a problem came from, when one did."""
    key, _, reason = line.partition(": ")
    for name, (keys, _value) in env_overrides(environ).items():
        path = ".".join(keys)
        if path == key or path.startswith(key + "."):
            return f"{key} (from {name}): {reason}"
    return line


def to_dict(config: Config) -> dict[str, Any]:
    data: dict[str, Any] = CONVERTER.unstructure(config)
    data.pop("base_dir", None)
    return data


def config_hash(config: Config) -> str:
    """A short, stable fingerprint of the effective configuration."""
    encoded = orjson.dumps(to_dict(config), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()[:16]


# --- secrets and cross-checks ------------------------------------------------------------------


@attrs.frozen
class Secrets:
    """Every secret the service holds; the log redactor is built from ``all()``."""

    admin_token: Secret | None = None
    venue_key: Secret | None = None  # Hyperliquid's signing key
    venue_api: ApiCredentials | None = None  # KuCoin's API key, secret and passphrase
    notify: NotifySecrets = attrs.field(factory=NotifySecrets)

    def all(self) -> list[Secret]:
        found = [s for s in (self.admin_token, self.venue_key) if s is not None]
        if self.venue_api is not None:
            found += self.venue_api.secrets()
        return found + list(self.notify.secrets())


def _token_problem(value: str) -> str | None:
    if len(value) < MIN_TOKEN_LENGTH:
        return f"must be at least {MIN_TOKEN_LENGTH} characters long"
    return None


def _key_problem(value: str) -> str | None:
    if PRIVATE_KEY.match(value) is None:
        return "must be a 32-byte hex private key (64 hex digits, optionally 0x-prefixed)"
    return None


def _read_secret(
    key: str,
    env_name: str,
    file_name: str,
    base_dir: Path,
    environ: Mapping[str, str],
    problem: Callable[[str], str | None] = _token_problem,
) -> tuple[Secret | None, list[str]]:
    value: str | None = None
    source = ""
    if file_name:
        secret_path = base_dir / file_name
        try:
            value = secret_path.read_text(encoding="utf-8").strip()
        except OSError as error:
            reason = error.strerror or str(error)
            return None, [f"{key}_file: cannot read {secret_path}: {reason}"]
        source = f"{key}_file"
    elif env_name and environ.get(env_name):
        value = environ[env_name].strip()
        source = f"{key}_env ({env_name})"
    if value is None:
        return None, []
    trouble = problem(value)  # never includes the value itself
    if trouble is not None:
        return None, [f"{source}: {trouble}"]
    return Secret(value), []


def resolve_secrets(config: Config, environ: Mapping[str, str]) -> Secrets:
    """Read the secrets the config names, and check the rules that depend on them."""
    token, problems = _read_secret(
        "admin.token",
        config.admin.token_env,
        config.admin.token_file,
        config.base_dir,
        environ,
    )
    if token is None and not problems and not is_loopback(config.admin.host):
        problems.append(
            f"admin.host: {config.admin.host} is not a loopback address, so a token is "
            f"required: set the environment variable {config.admin.token_env or '(token_env)'} "
            "or admin.token_file"
        )
    venue = config.venue
    venue_key: Secret | None = None
    venue_api: ApiCredentials | None = None
    if venue.kind == "kucoin":
        venue_api, venue_problems = _read_api_credentials(config, environ)
    else:
        venue_key, venue_problems = _read_signing_key(config, environ)
    problems += venue_problems
    try:
        notify = read_notify_secrets(config.notify, environ)
    except ConfigError as error:
        problems += error.errors
        notify = NotifySecrets()
    if problems:
        raise ConfigError(problems)
    return Secrets(admin_token=token, venue_key=venue_key, venue_api=venue_api, notify=notify)


def _read_signing_key(
    config: Config, environ: Mapping[str, str]
) -> tuple[Secret | None, list[str]]:
    """Hyperliquid's signing key; the development key for a simulator on this machine."""
    venue = config.venue
    venue_key, problems = _read_secret(
        "venue.private_key",
        venue.private_key_env,
        venue.private_key_file,
        config.base_dir,
        environ,
        _key_problem,
    )
    local = is_local_url(venue.url)
    if venue_key is None and not problems:
        if local:
            venue_key = Secret(DEV_PRIVATE_KEY)
        else:
            problems.append(
                f"venue.private_key_env: a signing key is required for {venue.url}: set "
                f"{venue.private_key_env} or venue.private_key_file"
            )
    elif venue_key is not None and not local and _same_key(venue_key, DEV_PRIVATE_KEY):
        problems.append(
            f"venue.private_key_env: the public development key is refused for {venue.url}"
        )
    return venue_key, problems


def _api_part_problem(value: str) -> str | None:
    return None if value else "must not be empty"


def _read_api_credentials(
    config: Config, environ: Mapping[str, str]
) -> tuple[ApiCredentials | None, list[str]]:
    """KuCoin's API key, secret and passphrase: all three, or none (then the development
    credentials, for a simulator on this machine only)."""
    venue = config.venue
    problems: list[str] = []
    parts: dict[str, Secret | None] = {}
    for part, env_name, file_name in (
        ("api_key", venue.api_key_env, venue.api_key_file),
        ("api_secret", venue.api_secret_env, venue.api_secret_file),
        ("api_passphrase", venue.api_passphrase_env, venue.api_passphrase_file),
    ):
        value, trouble = _read_secret(
            f"venue.{part}", env_name, file_name, config.base_dir, environ, _api_part_problem
        )
        parts[part] = value
        problems += trouble
    if problems:
        return None, problems
    local = is_local_url(venue.url)
    missing = [part for part, value in parts.items() if value is None]
    if len(missing) == len(parts):
        if not local:
            return None, [
                f"venue.api_key_env: KuCoin credentials are required for {venue.url}: set "
                f"{venue.api_key_env}, {venue.api_secret_env} and {venue.api_passphrase_env} "
                "(or the venue.api_*_file settings)"
            ]
        return dev_api_credentials(), []
    if missing:
        named = ", ".join(f"venue.{part}_env" for part in missing)
        return None, [f"{named}: not set, while the other KuCoin credentials are"]
    key, secret, passphrase = (parts["api_key"], parts["api_secret"], parts["api_passphrase"])
    assert key is not None
    assert secret is not None
    assert passphrase is not None
    if not local and key.reveal() == DEV_API_KEY[0]:
        return None, [f"venue.api_key_env: the public development key is refused for {venue.url}"]
    return ApiCredentials(key, secret, passphrase, venue.api_key_version), []


def _same_key(secret: Secret, key: str) -> bool:
    return secret.reveal().lower().removeprefix("0x") == key.lower().removeprefix("0x")
