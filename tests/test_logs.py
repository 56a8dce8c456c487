"""Tests for mm.logs: the JSON-lines file, the console, child context, levels and redaction."""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from loguru import logger

from mm.logs import LOG_FILE_NAME, LogSetup, _InterceptHandler, configure
from mm.secrets import REDACTED, Redactor, Secret

SECRET = "s3cr3t-admin-token-0123456789"
# JSON escapes quotes, backslashes and control characters: redaction must see through that.
AWKWARD_SECRETS = [SECRET, 'quo"ted\\back-slashed-secret', "tab\tand-control\x01-secret-value"]


@pytest.fixture(autouse=True)
def restore_stdlib_logging() -> Iterator[None]:
    """configure() installs a handler on the root logger; take it away again afterwards."""
    root = logging.getLogger()
    level = root.level
    yield
    root.handlers = [h for h in root.handlers if not isinstance(h, _InterceptHandler)]
    root.setLevel(level)


class Logs:
    """A configured LogSetup with its console buffer; ``close()`` then read what was written."""

    def __init__(self, tmp_path: Path, level: str, secrets: list[str]) -> None:
        self.console = io.StringIO()
        self.setup: LogSetup = configure(
            level=level,
            redact=Redactor([Secret(value) for value in secrets]),
            log_dir=tmp_path,
            console=self.console,
        )
        self.path = tmp_path / LOG_FILE_NAME

    def close(self) -> None:
        self.setup.close()

    def file_text(self) -> str:
        self.close()
        return self.path.read_text(encoding="utf-8")

    def records(self) -> list[dict[str, Any]]:
        lines = self.file_text().splitlines()
        records = [orjson.loads(line) for line in lines]
        assert all(isinstance(record, dict) for record in records)
        return records

    def console_text(self) -> str:
        self.close()
        return self.console.getvalue()


@pytest.fixture
def make_logs(tmp_path: Path) -> Iterator[Any]:
    made: list[Logs] = []

    def make(level: str = "DEBUG", secrets: list[str] | None = None) -> Logs:
        logs = Logs(tmp_path, level, secrets or [])
        made.append(logs)
        return logs

    yield make
    for logs in made:
        logs.close()


def strings_in(value: Any) -> Iterator[str]:
    """Every string (keys too) in a decoded JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)


def test_file_has_one_json_object_per_line(make_logs: Any) -> None:
    logs = make_logs()
    logger.info("first {}", 1)
    logger.bind(symbol="BTC").warning("second")
    records = logs.records()
    assert [record["message"] for record in records] == ["first 1", "second"]
    assert [record["level"] for record in records] == ["INFO", "WARNING"]
    for record in records:
        assert datetime.fromisoformat(record["time"]).tzinfo is not None
        assert record["extra"]["child"] == "mm"
        assert record["logger"] == __name__
        assert record["function"].startswith("test_file_has_one_json_object")
        assert isinstance(record["line"], int)
        assert isinstance(record["process"], int)
        assert "exception" not in record
    assert records[1]["extra"] == {"child": "mm", "symbol": "BTC"}


def test_internal_extra_fields_are_not_written(make_logs: Any) -> None:
    logs = make_logs()
    logger.info("hello")
    (record,) = logs.records()
    assert all(not key.startswith("_") for key in record["extra"])


def test_console_is_readable_and_uncoloured(make_logs: Any) -> None:
    logs = make_logs()
    logger.bind(symbol="ETH", size=3).info("quoting")
    text = logs.console_text()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO     mm quoting symbol=ETH size=3\n", text
    ), text
    assert "\x1b[" not in text


def test_exception_is_in_file_and_console(make_logs: Any) -> None:
    logs = make_logs()
    try:
        raise ValueError("went wrong")
    except ValueError:
        logger.exception("failed")
    (record,) = logs.records()
    assert record["level"] == "ERROR"
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert record["exception"].rstrip().endswith("ValueError: went wrong")
    assert "ValueError: went wrong" in logs.console.getvalue()


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_secret_never_reaches_file_or_console(make_logs: Any, secret: str) -> None:
    logs = make_logs(secrets=[secret])
    logger.info("the token is {}", secret)
    logger.bind(token=secret, nested={"deep": [secret]}).info("bound")
    try:
        try:
            raise KeyError(secret)
        except KeyError as inner:
            raise RuntimeError(f"request failed with {secret}") from inner
    except RuntimeError:
        logger.exception("crash")
    logging.getLogger("httpx").warning("header Authorization: Bearer %s", secret)
    try:
        raise OSError(secret)
    except OSError:
        logging.getLogger("httpx").exception("stdlib with traceback")

    raw = logs.file_text()
    console = logs.console_text()
    records = [orjson.loads(line) for line in raw.splitlines()]
    assert len(records) == 5
    assert secret not in raw
    assert secret not in console
    for record in records:
        for text in strings_in(record):
            assert secret not in text, record
    assert REDACTED in raw
    assert REDACTED in console
    assert records[0]["message"] == f"the token is {REDACTED}"
    assert records[1]["extra"]["token"] == REDACTED
    assert records[1]["extra"]["nested"] == {"deep": [REDACTED]}
    assert f"RuntimeError: request failed with {REDACTED}" in records[2]["exception"]
    assert records[3]["message"] == f"header Authorization: Bearer {REDACTED}"
    assert "OSError: ***" in records[4]["exception"]


class Carrier:
    """A bound value whose text holds the secret (module level: the file sink pickles records)."""

    def __str__(self) -> str:
        return f"carrier({SECRET})"


def test_secret_inside_bound_object_is_redacted(make_logs: Any) -> None:
    logs = make_logs(secrets=[SECRET])
    logger.bind(thing=Carrier()).info("carried")
    (record,) = logs.records()
    assert record["extra"]["thing"] == f"carrier({REDACTED})"
    assert SECRET not in logs.console.getvalue()
    assert f"thing=carrier({REDACTED})" in logs.console.getvalue()


def test_redaction_keeps_json_valid_for_every_secret(make_logs: Any) -> None:
    secrets = ['"', "level", "{", "child"]  # hostile values, to prove the line stays valid JSON
    logs = make_logs(secrets=secrets)
    logger.bind(child="mm/x").info('a "quoted" {brace} level')
    (record,) = logs.records()
    assert record["message"] == f"a {REDACTED}quoted{REDACTED} {REDACTED}brace}} {REDACTED}"


def test_child_comes_from_contextualize(make_logs: Any) -> None:
    logs = make_logs()
    logger.info("outside before")
    with logger.contextualize(child="mm/x"):
        logger.info("inside")
        logging.getLogger("httpx").warning("stdlib inside")
        with logger.contextualize(child="mm/x/y"):
            logger.info("nested")
    logger.info("outside after")
    records = logs.records()
    assert [(r["message"], r["extra"]["child"]) for r in records] == [
        ("outside before", "mm"),
        ("inside", "mm/x"),
        ("stdlib inside", "mm/x"),
        ("nested", "mm/x/y"),
        ("outside after", "mm"),
    ]
    console = logs.console.getvalue().splitlines()
    assert " mm/x inside" in console[1]
    assert " mm outside after" in console[4]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("DEBUG", ["debug", "info", "warning", "error"]),
        ("INFO", ["info", "warning", "error"]),
        ("WARNING", ["warning", "error"]),
        ("ERROR", ["error"]),
    ],
)
def test_level_filtering(make_logs: Any, level: str, expected: list[str]) -> None:
    logs = make_logs(level=level)
    logger.trace("trace")
    logger.debug("debug")
    logger.info("info")
    logger.warning("warning")
    logger.error("error")
    assert [record["message"] for record in logs.records()] == expected
    lines = logs.console.getvalue().splitlines()
    assert [line.rsplit(" ", 1)[-1] for line in lines] == expected


def test_stdlib_records_are_routed_with_their_level(make_logs: Any) -> None:
    hypercorn = logging.getLogger("hypercorn.error")
    stray = logging.StreamHandler(io.StringIO())
    hypercorn.addHandler(stray)
    hypercorn.propagate = False
    logs = make_logs()
    assert hypercorn.handlers == []
    assert hypercorn.propagate

    httpx = logging.getLogger("httpx")
    httpx.debug("dropped: the root logger is at INFO")
    httpx.info("dropped: a line per request is not news at INFO")
    httpx.warning("httpx warning")
    hypercorn.error("hypercorn error")
    logging.getLogger("some.library").critical("critical")
    logging.getLogger("httpcore").info("dropped: httpcore is at WARNING")
    logging.getLogger("custom").log(35, "custom level")
    records = logs.records()
    assert [(r["level"], r["message"]) for r in records] == [
        ("WARNING", "httpx warning"),
        ("ERROR", "hypercorn error"),
        ("CRITICAL", "critical"),
        ("Level 35", "custom level"),
    ]
    # The caller is the code that logged, not the logging module or the intercept handler.
    assert {r["function"] for r in records} == {"test_stdlib_records_are_routed_with_their_level"}


def test_stdlib_records_respect_the_loguru_level(make_logs: Any) -> None:
    logs = make_logs(level="ERROR")
    logging.getLogger("httpx").warning("too low")
    logging.getLogger("httpx").error("high enough")
    assert [record["message"] for record in logs.records()] == ["high enough"]


def test_close_removes_sinks(make_logs: Any) -> None:
    logs = make_logs()
    logger.info("kept")
    logs.close()
    logger.info("after close")
    assert [record["message"] for record in logs.records()] == ["kept"]
    assert logs.console.getvalue().count("\n") == 1
    assert logs.setup.handler_ids == []


def test_context_manager_closes(tmp_path: Path) -> None:
    console = io.StringIO()
    with configure(level="INFO", redact=Redactor(), log_dir=tmp_path, console=console) as setup:
        assert setup.log_file == tmp_path / LOG_FILE_NAME
        assert len(setup.handler_ids) == 2
        logger.info("inside")
    logger.info("outside")
    text = (tmp_path / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert [orjson.loads(line)["message"] for line in text.splitlines()] == ["inside"]
    assert "outside" not in console.getvalue()


def test_without_log_dir_or_console(tmp_path: Path) -> None:
    console = io.StringIO()
    with configure(level="INFO", redact=Redactor(), log_dir=None, console=console) as setup:
        assert setup.log_file is None
        assert len(setup.handler_ids) == 1
        logger.info("console only")
    assert "console only" in console.getvalue()
    assert list(tmp_path.iterdir()) == []
    with configure(level="INFO", redact=Redactor(), log_dir=None, console=None) as setup:
        assert setup.handler_ids == []


class Unpicklable:
    """A bound value the queued file sink could not pickle as it is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __str__(self) -> str:
        return "unpicklable-thing"


def test_unpicklable_bound_value_still_reaches_the_file(make_logs: Any) -> None:
    logs = make_logs()
    logger.bind(thing=Unpicklable()).info("still written")
    (record,) = logs.records()
    assert record["message"] == "still written"
    assert record["extra"]["thing"] == "unpicklable-thing"
