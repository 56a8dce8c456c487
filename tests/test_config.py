"""Tests for mm.config: the shipped config.toml, validation messages, overrides and secrets."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.config import (
    LOG_LEVELS,
    MIN_TOKEN_LENGTH,
    Config,
    ConfigError,
    config_hash,
    env_overrides,
    load_config,
    resolve_secrets,
    staleness_ladder,
    structure,
    to_dict,
)
from mm.settings import is_loopback
from mm.venues.config import DEV_API_KEY, DEV_PRIVATE_KEY

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config.toml"
TOKEN = "0123456789abcdef-token"
SECRET_MESSAGE = (
    "secrets are never read from the config file; "
    "name an environment variable (token_env) or a file (token_file) instead"
)


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        structure(data)
    return caught.value.errors


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sections(cls: type = Config, prefix: str = "") -> dict[str, type]:
    """The config's sections (attrs classes), nested ones included, by dotted name."""
    found: dict[str, type] = {}
    for name, kind in typing.get_type_hints(cls).items():
        if isinstance(kind, type) and attrs.has(kind):
            found[prefix + name] = kind
            found.update(sections(kind, f"{prefix}{name}."))
    return found


def plain_keys(cls: type) -> list[str]:
    """A section's keys that hold values (not nested sections)."""
    hints = typing.get_type_hints(cls)
    return [
        field.name
        for field in attrs.fields(cls)
        if not (isinstance(hints[field.name], type) and attrs.has(hints[field.name]))
    ]


# --- the shipped file ----------------------------------------------------------------------------


def test_shipped_config_equals_defaults() -> None:
    config = load_config(SHIPPED_CONFIG, {})
    assert config.base_dir == SHIPPED_CONFIG.parent
    assert config == attrs.evolve(structure({}), base_dir=config.base_dir)
    assert to_dict(config) == to_dict(Config())


def test_sections_are_resolved_as_attrs_classes() -> None:
    # Guards the helper: it must see every section, or the comment check would pass vacuously.
    assert set(sections()) == {
        "service",
        "admin",
        "supervision",
        "journal",
        "venue",
        "sim",
        "sim.market",
        "sim.faults",
        "feeds",
        "feeds.connection",
        "feeds.market",
        "feeds.market.quality",
        "feeds.user",
        "feeds.startup",
        "feeds.deadman",
        "rate_limit",
        "strategy",
        "triarb",
        "triarb.limits",
        "strategy.ladder",
        "strategy.spread",
        "strategy.defensive",
        "strategy.gate",
        "strategy.quota",
        "strategy.accumulator",
        "strategy.volatility",
        "strategy.intensity",
        "strategy.cascade",
        "strategy.toxicity",
        "strategy.staleness",
        "strategy.model_gating",
        "executor",
        "executor.reconcile",
        "executor.audit",
        "executor.budget",
        "risk",
        "pretrade",
        "session",
        "flatten",
        "autonomy",
        "notify",
    }


KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=")


def key_lines(lines: list[str]) -> dict[tuple[str, str], int]:
    """(section, key) -> line index of every ``key = value`` line of a TOML text."""
    where: dict[tuple[str, str], int] = {}
    section = ""
    for number, line in enumerate(lines):
        header = re.match(r"^\[([^\]]+)\]\s*$", line)
        if header:
            section = header.group(1)
            continue
        match = KEY_LINE.match(line)
        if match:
            where[(section, match.group(1))] = number
    return where


def uncommented_keys(text: str) -> list[str]:
    """Keys whose group of consecutive key lines is not directly below a comment line."""
    lines = text.splitlines()
    missing = []
    for (section, key), number in sorted(key_lines(lines).items()):
        above = number - 1
        while above >= 0 and KEY_LINE.match(lines[above]):
            above -= 1
        if above < 0 or not lines[above].startswith("#"):
            missing.append(f"{section}.{key}")
    return missing


def test_every_config_key_appears_in_shipped_config() -> None:
    lines = SHIPPED_CONFIG.read_text(encoding="utf-8").splitlines()
    expected = {(name, key) for name, cls in sections().items() for key in plain_keys(cls)}
    assert set(key_lines(lines)) == expected


def test_every_key_in_shipped_config_is_commented() -> None:
    assert uncommented_keys(SHIPPED_CONFIG.read_text(encoding="utf-8")) == []


def test_uncommented_key_detection() -> None:
    text = (
        "[admin]\n# The host.\nhost = 'x'\nport = 1\n\ntoken_env = 'Y'\n[journal]\nbatch_max = 1\n"
    )
    assert uncommented_keys(text) == ["admin.token_env", "journal.batch_max"]


# --- validation ----------------------------------------------------------------------------------


def test_empty_document_gives_defaults() -> None:
    config = structure({})
    assert config.admin.port == 9400
    assert config.admin.host == "127.0.0.1"
    assert config.service.log_level == "INFO"
    assert config.journal.batch_max == 500


def test_unknown_keys_are_rejected() -> None:
    assert errors_of({"admin": {"nope": 1}}) == ["admin.nope: unknown key"]
    assert errors_of({"bogus": 1}) == ["bogus: unknown key"]
    assert errors_of({"no_such_section": {"url": "x"}}) == ["no_such_section: unknown key"]
    assert errors_of({"base_dir": "/tmp"}) == ["base_dir: unknown key"]


@pytest.mark.parametrize("key", ["token", "api_key", "password", "secret", "passphrase"])
def test_secret_named_keys_say_secrets_are_not_read_from_file(key: str) -> None:
    assert errors_of({"admin": {key: "x" * 20}}) == [f"admin.{key}: {SECRET_MESSAGE}"]


def test_secret_named_top_level_key() -> None:
    assert errors_of({"private_key": "abc"}) == [f"private_key: {SECRET_MESSAGE}"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"supervision": {"backoff_initial": -5}},
            "supervision.backoff_initial: must be > 0, got -5.0",
        ),
        (
            {"supervision": {"backoff_multiplier": 0.5}},
            "supervision.backoff_multiplier: must be >= 1, got 0.5",
        ),
        (
            {"supervision": {"stable_after": -1.0}},
            "supervision.stable_after: must be >= 0, got -1.0",
        ),
        ({"admin": {"port": 70000}}, "admin.port: must be between 0 and 65535, got 70000"),
        ({"admin": {"port": -1}}, "admin.port: must be between 0 and 65535, got -1"),
        (
            {"service": {"log_level": "verbose"}},
            "service.log_level: must be one of TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR, "
            "CRITICAL, got 'verbose'",
        ),
        (
            {"service": {"log_level": "info"}},
            "service.log_level: must be one of TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR, "
            "CRITICAL, got 'info'",
        ),
        ({"service": {"name": "  "}}, "service.name: must not be empty"),
        ({"journal": {"batch_max": 0}}, "journal.batch_max: must be >= 1, got 0"),
        (
            {"feeds": {"market": {"book_depth": 0}}},
            "feeds.market.book_depth: must be >= 1, got 0",
        ),
        (
            {"feeds": {"connection": {"receive_buffer_size": 512}}},
            "feeds.connection.receive_buffer_size: must be >= 1024, got 512",
        ),
        ({"journal": {"flush_timeout": 0}}, "journal.flush_timeout: must be > 0, got 0.0"),
        (
            {"sim": {"funding_rate": 0.05}},
            "sim.funding_rate: must be within +-0.04 (the venue's cap: 4% an hour), got 0.05",
        ),
    ],
)
def test_constraint_failures_name_path_and_reason(data: dict[str, Any], message: str) -> None:
    assert errors_of(data) == [message]


def test_every_constraint_failure_is_reported_at_once() -> None:
    errors = errors_of({"admin": {"port": 70000}, "journal": {"queue_size": 0}})
    assert sorted(errors) == [
        "admin.port: must be between 0 and 65535, got 70000",
        "journal.queue_size: must be >= 1, got 0",
    ]


@pytest.mark.parametrize("level", LOG_LEVELS)
def test_every_log_level_is_accepted(level: str) -> None:
    assert structure({"service": {"log_level": level}}).service.log_level == level


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"admin": {"port": "abc"}}, "admin.port: expected an integer, got 'abc'"),
        ({"admin": {"port": True}}, "admin.port: expected an integer, got True"),
        ({"admin": {"port": 1.5}}, "admin.port: expected an integer, got 1.5"),
        ({"admin": {"host": 3}}, "admin.host: expected a string, got 3"),
        ({"service": {"json_logs": "yes"}}, "service.json_logs: expected true or false, got 'yes'"),
        ({"service": {"json_logs": 1}}, "service.json_logs: expected true or false, got 1"),
        (
            {"supervision": {"backoff_cap": False}},
            "supervision.backoff_cap: expected a number, got False",
        ),
        (
            {"supervision": {"backoff_cap": "10"}},
            "supervision.backoff_cap: expected a number, got '10'",
        ),
    ],
)
def test_wrong_types_name_path_and_expected_type(data: dict[str, Any], message: str) -> None:
    assert errors_of(data) == [message]


def test_int_is_accepted_for_a_float_setting() -> None:
    value = structure({"supervision": {"backoff_cap": 10}}).supervision.backoff_cap
    assert value == 10.0
    assert type(value) is float


@pytest.mark.parametrize("value", [5, "admin", [1, 2], True])
def test_section_given_as_non_table(value: Any) -> None:
    assert errors_of({"admin": value}) == [f"admin: expected a table, got {value!r}"]


@given(st.integers(min_value=0, max_value=65535))
def test_any_valid_port_is_accepted(value: int) -> None:
    assert structure({"admin": {"port": value}}).admin.port == value


@given(st.integers(max_value=-1) | st.integers(min_value=65536))
def test_any_out_of_range_port_is_rejected_with_path(value: int) -> None:
    with pytest.raises(ConfigError) as caught:
        structure({"admin": {"port": value}})
    assert caught.value.errors == [f"admin.port: must be between 0 and 65535, got {value}"]


# --- files ---------------------------------------------------------------------------------------


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[admin\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert len(caught.value.errors) == 1
    assert caught.value.errors[0].startswith(f"{path}: invalid TOML: ")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.errors == [f"{path}: cannot read config file: No such file or directory"]
    assert str(path) in str(caught.value)


def test_file_errors_name_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[admin]\nport = 'x'\ntoken = 'abc'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert sorted(caught.value.errors) == [
        "admin.port: expected an integer, got 'x'",
        f"admin.token: {SECRET_MESSAGE}",
    ]


def test_run_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\nrun_dir = "state/run"\n')
    config = load_config(path, {})
    assert config.base_dir == tmp_path.resolve()
    assert config.run_dir == (tmp_path / "state" / "run").resolve()


def test_absolute_run_dir_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    path = write(tmp_path, f'[service]\nrun_dir = "{target}"\n')
    assert load_config(path, {}).run_dir == target.resolve()


def test_default_run_dir_is_next_to_the_shipped_config() -> None:
    assert load_config(SHIPPED_CONFIG, {}).run_dir == (SHIPPED_CONFIG.parent / "run").resolve()


# --- environment overrides -----------------------------------------------------------------------


def test_environment_overrides_are_typed(tmp_path: Path) -> None:
    path = write(tmp_path, "[admin]\nport = 9400\n")
    environ = {
        "MM_ADMIN__PORT": "9500",
        "MM_SERVICE__JSON_LOGS": "false",
        "MM_SUPERVISION__BACKOFF_CAP": "5",
        "MM_SERVICE__NAME": '"quoted name"',
    }
    config = load_config(path, environ)
    assert config.admin.port == 9500
    assert config.service.json_logs is False
    assert config.supervision.backoff_cap == 5.0
    assert config.service.name == "quoted name"


def test_environment_override_falls_back_to_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    config = load_config(path, {"MM_ADMIN__HOST": "0.0.0.0", "MM_SERVICE__LOG_LEVEL": "DEBUG"})
    assert config.admin.host == "0.0.0.0"
    assert config.service.log_level == "DEBUG"


def test_environment_override_of_unknown_key_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"MM_ADMIN__NOPE": "1"})
    assert caught.value.errors == ["admin.nope (from MM_ADMIN__NOPE): unknown key"]


def test_environment_override_of_unknown_section_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"MM_FOO__BAR": "1"})
    assert caught.value.errors == ["foo (from MM_FOO__BAR): unknown key"]


def test_environment_override_of_wrong_type_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"MM_ADMIN__PORT": "abc"})
    assert caught.value.errors == [
        "admin.port (from MM_ADMIN__PORT): expected an integer, got 'abc'"
    ]


def test_environment_override_of_constraint_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"MM_ADMIN__PORT": "70000"})
    assert caught.value.errors == [
        "admin.port (from MM_ADMIN__PORT): must be between 0 and 65535, got 70000"
    ]


def test_environment_override_into_a_non_table(tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\nname = "mm"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"MM_SERVICE__NAME__X": "1"})
    assert caught.value.errors == ["service.name (from MM_SERVICE__NAME__X): is not a table"]


def test_environment_override_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[admin]\nport = 1234\n")
    assert load_config(path, {"MM_ADMIN__PORT": "4321"}).admin.port == 4321


@pytest.mark.parametrize(
    "name",
    [
        "MM_ADMIN_TOKEN",  # no separator
        "MM_ADMIN_PORT",  # no separator
        "XX_ADMIN__PORT",  # no MM_ prefix
        "ADMIN__PORT",  # no prefix
        "mm_admin__port",  # prefix is case-sensitive
        "MM___PORT",  # empty section
        "MM_ADMIN__",  # empty key
    ],
)
def test_variables_without_prefix_or_separator_are_ignored(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "")
    assert env_overrides({name: "9500"}) == {}
    assert load_config(path, {name: "9500"}).admin.port == 9400


def test_env_overrides_parses_paths_and_values() -> None:
    assert env_overrides({"MM_ADMIN__PORT": "9500", "MM_SERVICE__NAME": "x y", "HOME": "/"}) == {
        "MM_ADMIN__PORT": (["admin", "port"], 9500),
        "MM_SERVICE__NAME": (["service", "name"], "x y"),
    }


# --- config_hash ---------------------------------------------------------------------------------


def test_config_hash_is_stable_for_equal_configs(tmp_path: Path) -> None:
    from_file = load_config(SHIPPED_CONFIG, {})
    from_defaults = structure({})
    elsewhere = attrs.evolve(from_defaults, base_dir=tmp_path)
    assert config_hash(from_file) == config_hash(from_defaults) == config_hash(elsewhere)
    assert config_hash(structure({})) == config_hash(structure({}))
    assert re.fullmatch(r"[0-9a-f]{16}", config_hash(from_defaults))


def test_config_hash_changes_with_a_value() -> None:
    base = config_hash(structure({}))
    assert config_hash(structure({"admin": {"port": 9401}})) != base
    assert config_hash(structure({"service": {"json_logs": False}})) != base
    assert config_hash(structure({"journal": {"batch_max": 499}})) != base


# --- secrets and the admin host ------------------------------------------------------------------


def test_no_token_on_loopback_is_fine() -> None:
    secrets = resolve_secrets(structure({}), {})
    assert secrets.admin_token is None
    assert secrets.all() == [secrets.venue_key]  # the simulator's development key


def test_token_from_environment_variable() -> None:
    config = structure({"admin": {"token_env": "MY_TOKEN"}})
    secrets = resolve_secrets(config, {"MY_TOKEN": f"  {TOKEN}\n", "MM_ADMIN_TOKEN": "x" * 20})
    assert secrets.admin_token is not None
    assert secrets.admin_token.reveal() == TOKEN
    assert secrets.all() == [secrets.admin_token, secrets.venue_key]


def test_token_from_default_environment_variable() -> None:
    secrets = resolve_secrets(structure({}), {"MM_ADMIN_TOKEN": TOKEN})
    assert secrets.admin_token is not None
    assert secrets.admin_token.reveal() == TOKEN


def test_token_file_is_relative_to_base_dir_and_wins(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text(f"\n  {TOKEN}  \n", encoding="utf-8")
    config = load_config(write(tmp_path, '[admin]\ntoken_file = "token.txt"\n'), {})
    secrets = resolve_secrets(config, {"MM_ADMIN_TOKEN": "from-the-environment-xyz"})
    assert secrets.admin_token is not None
    assert secrets.admin_token.reveal() == TOKEN


def test_short_token_from_environment_names_the_source() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(structure({}), {"MM_ADMIN_TOKEN": "  short-token  "})
    assert caught.value.errors == [
        f"admin.token_env (MM_ADMIN_TOKEN): must be at least {MIN_TOKEN_LENGTH} characters long"
    ]


def test_token_of_exactly_minimum_length_is_accepted() -> None:
    secrets = resolve_secrets(structure({}), {"MM_ADMIN_TOKEN": "x" * MIN_TOKEN_LENGTH})
    assert secrets.admin_token is not None


def test_short_token_from_file_names_the_source(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("x" * (MIN_TOKEN_LENGTH - 1) + "\n", encoding="utf-8")
    config = load_config(write(tmp_path, '[admin]\ntoken_file = "token.txt"\n'), {})
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(config, {})
    assert caught.value.errors == [
        f"admin.token_file: must be at least {MIN_TOKEN_LENGTH} characters long"
    ]


def test_missing_token_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[admin]\ntoken_file = "absent.txt"\n'), {})
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(config, {"MM_ADMIN_TOKEN": TOKEN})
    assert caught.value.errors == [
        f"admin.token_file: cannot read {tmp_path.resolve() / 'absent.txt'}: "
        "No such file or directory"
    ]


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", "::", "192.168.0.1"])
def test_non_loopback_host_without_token_is_an_error(host: str) -> None:
    config = structure({"admin": {"host": host}})
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(config, {})
    (error,) = caught.value.errors
    assert error.startswith(f"admin.host: {host} is not a loopback address")
    assert "MM_ADMIN_TOKEN" in error


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com"])
def test_non_loopback_host_with_token_is_fine(host: str) -> None:
    config = structure({"admin": {"host": host}})
    secrets = resolve_secrets(config, {"MM_ADMIN_TOKEN": TOKEN})
    assert secrets.admin_token is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.5.5.5"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    assert resolve_secrets(structure({"admin": {"host": host}}), {}).admin_token is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("128.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


# --- the venue's signing key ---------------------------------------------------------------------

KEY = "0x" + "ab" * 32


def test_the_embedded_simulator_gets_the_development_key() -> None:
    secrets = resolve_secrets(structure({}), {})
    assert secrets.venue_key is not None
    assert secrets.venue_key.reveal() == DEV_PRIVATE_KEY


def test_a_loopback_simulator_gets_the_development_key_too() -> None:
    config = structure({"venue": {"url": "http://127.0.0.1:8800"}})
    secrets = resolve_secrets(config, {})
    assert secrets.venue_key is not None
    assert secrets.venue_key.reveal() == DEV_PRIVATE_KEY


def test_a_remote_venue_needs_a_key() -> None:
    config = structure({"venue": {"url": "https://api.hyperliquid.xyz", "network": "mainnet"}})
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(config, {})
    assert caught.value.errors == [
        "venue.private_key_env: a signing key is required for https://api.hyperliquid.xyz: "
        "set MM_HL_PRIVATE_KEY or venue.private_key_file"
    ]


def test_the_development_key_is_refused_for_a_remote_venue() -> None:
    config = structure({"venue": {"url": "https://api.hyperliquid.xyz"}})
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(config, {"MM_HL_PRIVATE_KEY": DEV_PRIVATE_KEY.upper().replace("0X", "")})
    assert caught.value.errors == [
        "venue.private_key_env: the public development key is refused for "
        "https://api.hyperliquid.xyz"
    ]


def test_a_key_from_the_environment_or_a_file(tmp_path: Path) -> None:
    config = structure({"venue": {"url": "https://api.hyperliquid.xyz"}})
    from_env = resolve_secrets(config, {"MM_HL_PRIVATE_KEY": f" {KEY}\n"})
    assert from_env.venue_key is not None
    assert from_env.venue_key.reveal() == KEY
    (tmp_path / "key").write_text("cd" * 32)
    with_file = structure({"venue": {"private_key_file": "key"}}, base_dir=tmp_path)
    from_file = resolve_secrets(with_file, {"MM_HL_PRIVATE_KEY": KEY})
    assert from_file.venue_key is not None
    assert from_file.venue_key.reveal() == "cd" * 32


def test_a_malformed_key_is_refused_without_showing_it() -> None:
    bad = "0x" + "zz" * 32
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(structure({}), {"MM_HL_PRIVATE_KEY": bad})
    assert caught.value.errors == [
        "venue.private_key_env (MM_HL_PRIVATE_KEY): must be a 32-byte hex private key "
        "(64 hex digits, optionally 0x-prefixed)"
    ]
    assert bad not in str(caught.value)


@pytest.mark.parametrize(
    ("venue", "error"),
    [
        ({"url": "ftp://x"}, 'venue.url: must be "embedded" or an http(s) base URL'),
        ({"network": "devnet"}, "venue.network: must be one of mainnet, testnet"),
        ({"account_address": "0x12"}, "venue.account_address: must be empty or a 0x-prefixed"),
        ({"kind": "binance"}, "venue.kind: must be one of hyperliquid"),
    ],
)
def test_venue_section_checks(venue: dict[str, str], error: str) -> None:
    assert any(line.startswith(error) for line in errors_of({"venue": venue}))


def test_operations_sections_report_each_problem_once() -> None:
    """Field checks run once for the whole config; the sections add only their cross-checks."""
    errors = errors_of(
        {
            "notify": {"sinks": ["webhook"], "min_interval_s": -1.0},
            "strategy": {"symbols": ["BTC", "SOL"]},
        }
    )
    assert len(errors) == len(set(errors)) == 3
    assert any(e.startswith("notify.min_interval_s:") for e in errors)
    assert any(e.startswith("notify.webhook_url: required") for e in errors)
    assert any(e.startswith("strategy.symbols[1]: 'SOL' is in no session track") for e in errors)


def test_one_drawdown_measure_and_halt_acts_before_the_kill_switch() -> None:
    shipped = load_config(SHIPPED_CONFIG, {})
    assert shipped.autonomy.max_drawdown < shipped.risk.max_drawdown
    errors = errors_of({"autonomy": {"max_drawdown": 0.02}, "risk": {"max_drawdown": 0.02}})
    assert errors == [
        "autonomy.max_drawdown: must be below risk.max_drawdown (0.02) so that HALT acts before "
        "the kill switch, got 0.02"
    ]


def test_the_shipped_staleness_ladder_runs_from_pulling_a_symbol_to_the_kill() -> None:
    shipped = load_config(SHIPPED_CONFIG, {})
    ladder = staleness_ladder(shipped)
    assert [key for key, _ in ladder] == [
        "strategy.max_book_age_s",
        "feeds.market.quality.max_age_ms",
        "autonomy.feed_gap_s",
        "risk.stale_threshold_s",
    ]
    limits = [seconds for _, seconds in ladder]
    assert limits == sorted(limits)
    assert len(set(limits)) == len(limits)
    # Each key of the ladder is documented in config.toml's one description of it.
    text = SHIPPED_CONFIG.read_text()
    block = text[text.index("# The staleness ladder") : text.index("max_book_age_s = ")]
    for key, _ in ladder:
        assert key in block


def test_a_staleness_ladder_out_of_order_is_refused() -> None:
    errors = errors_of({"autonomy": {"feed_gap_s": 40.0}})
    assert errors == [
        "risk.stale_threshold_s: must be longer than autonomy.feed_gap_s (40 s) in the "
        "staleness ladder, got 30 s"
    ]


def test_a_fill_dedup_smaller_than_the_venues_fill_reach_is_refused() -> None:
    """Fewer fills remembered than Hyperliquid can list again (userFillsByTime reaches its
    10,000 newest) and a catch-up after a restart counts the oldest twice: refused at start,
    naming the key; the shipped value is the least that is safe."""
    assert errors_of({"feeds": {"user": {"dedup_capacity": 9_999}}}) == [
        "feeds.user.dedup_capacity: must be at least 10000, the fills hyperliquid can list "
        "again (a catch-up lists them all, and a fill forgotten before it is listed again is "
        "counted twice), got 9999"
    ]
    assert structure({"feeds": {"user": {"dedup_capacity": 10_000}}})
    shipped = load_config(SHIPPED_CONFIG, {})
    assert shipped.feeds.user.dedup_capacity == 10_000


# --- KuCoin's API credentials -------------------------------------------------------------------

KC_ENV = {
    "MM_KC_API_KEY": "6740d1d0a7c1ae0001abcd12",
    "MM_KC_API_SECRET": "a-secret-of-the-account",
    "MM_KC_API_PASSPHRASE": "a passphrase",
}
KUCOIN_REMOTE = {"kind": "kucoin", "url": "https://api.kucoin.com"}


def test_kucoin_on_the_simulator_gets_the_development_credentials() -> None:
    secrets = resolve_secrets(structure({"venue": {"kind": "kucoin"}}), {})
    assert secrets.venue_key is None  # no Hyperliquid key is read for KuCoin
    assert secrets.venue_api is not None
    assert [part.reveal() for part in secrets.venue_api.secrets()] == list(DEV_API_KEY)
    assert all(part in secrets.all() for part in secrets.venue_api.secrets())


def test_kucoin_remote_needs_all_three_and_names_the_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(structure({"venue": KUCOIN_REMOTE}), {})
    assert caught.value.errors == [
        "venue.api_key_env: KuCoin credentials are required for https://api.kucoin.com: set "
        "MM_KC_API_KEY, MM_KC_API_SECRET and MM_KC_API_PASSPHRASE (or the venue.api_*_file "
        "settings)"
    ]
    partial = {"MM_KC_API_KEY": KC_ENV["MM_KC_API_KEY"]}
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(structure({"venue": KUCOIN_REMOTE}), partial)
    assert caught.value.errors == [
        "venue.api_secret_env, venue.api_passphrase_env: not set, while the other KuCoin "
        "credentials are"
    ]


def test_kucoin_credentials_from_the_environment_and_files(tmp_path: Path) -> None:
    (tmp_path / "passphrase").write_text("from a file\n")
    config = structure(
        {"venue": {**KUCOIN_REMOTE, "api_passphrase_file": "passphrase", "api_key_version": "3"}},
        base_dir=tmp_path,
    )
    env = {**KC_ENV, "MM_KC_API_PASSPHRASE": ""}
    missing = structure({"venue": {**KUCOIN_REMOTE, "api_passphrase_file": "nope"}}, tmp_path)
    with pytest.raises(ConfigError, match=r"venue\.api_passphrase_file: cannot read"):
        resolve_secrets(missing, env)
    secrets = resolve_secrets(config, env)
    assert secrets.venue_api is not None
    assert secrets.venue_api.key.reveal() == KC_ENV["MM_KC_API_KEY"]
    assert secrets.venue_api.passphrase.reveal() == "from a file"
    assert secrets.venue_api.version == "3"
    for part in secrets.venue_api.secrets():
        assert part.reveal() not in repr(secrets.venue_api)


def test_kucoin_development_key_refused_remote_and_bad_values_not_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(
            structure({"venue": KUCOIN_REMOTE}),
            dict(zip(KC_ENV, DEV_API_KEY, strict=True)),
        )
    assert caught.value.errors == [
        "venue.api_key_env: the public development key is refused for https://api.kucoin.com"
    ]
    with pytest.raises(ConfigError) as caught:
        resolve_secrets(structure({"venue": KUCOIN_REMOTE}), KC_ENV | {"MM_KC_API_SECRET": " \t "})
    assert caught.value.errors == ["venue.api_secret_env (MM_KC_API_SECRET): must not be empty"]


def test_kucoin_key_version_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"venue\.api_key_version: must be one of 2, 3"):
        structure({"venue": {"kind": "kucoin", "api_key_version": "1"}})


def test_a_liquidation_window_shorter_than_the_fill_audits_recovery_is_refused() -> None:
    """A fill the stream dropped is recovered by the drift's fill audit up to
    audit_drift_gap_s plus post_timeout_s later (its read's reply lost, asked over REST): a
    window that ends first takes the fill's position change for a forced liquidation."""
    with pytest.raises(ConfigError) as caught:
        structure({"risk": {"liquidation_fill_window_s": 5.0}})
    assert caught.value.errors == [
        "risk.liquidation_fill_window_s: must be longer than feeds.user.audit_drift_gap_s plus"
        " feeds.connection.post_timeout_s (7 s), the time a fill the stream dropped may take to"
        " be recovered by the fill audit (a position change it explains would be taken for a"
        " forced liquidation), got 5.0"
    ]
    shipped = load_config(SHIPPED_CONFIG, {})
    assert shipped.risk.liquidation_fill_window_s > 7.0
