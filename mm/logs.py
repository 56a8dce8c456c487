"""Logging: loguru with a readable console, a JSON-lines file in run_dir, and secret redaction.

Both sinks format through functions that pass the message, the extra fields and the traceback
through the redactor, so a configured secret never reaches a log line. Standard-library logging
(hypercorn, httpx) is routed into loguru. Every record carries ``child``: the supervisor sets it
for each child's task tree; outside any child it is ``mm``, the root of the tree (the service
itself). httpx's per-request lines are DEBUG: they are not news at INFO. The log directory is
0700 and every log file, rotated ones included, 0600: logs are the owner's alone.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from loguru import logger

from mm.runfile import PRIVATE_FILE, private_dir
from mm.secrets import Redactor

ROOT_CHILD = "mm"  # the child of records outside any supervised child: the service

if TYPE_CHECKING:
    from loguru import Record

LOG_FILE_NAME = "mm.jsonl"
CONSOLE_TEMPLATE = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
    "<cyan>{extra[child]}</cyan> {extra[_text]}\n"
)


def _exception_text(record: Record) -> str:
    exception = record["exception"]
    if exception is None or exception.type is None:
        return ""
    return "".join(traceback.format_exception(exception.type, exception.value, exception.traceback))


def _visible_extra(record: Record) -> dict[str, Any]:
    return {key: value for key, value in record["extra"].items() if not key.startswith("_")}


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """Scalars, lists and string-keyed dicts pass; anything else becomes its text."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _plain(item) for key, item in value.items()}
    return str(value)


def _plain_extras(record: Record) -> None:
    """Bound values become plain data, so the queued file sink can always pickle the record."""
    extra = record["extra"]
    for key, value in extra.items():
        if not isinstance(value, _SCALARS):
            extra[key] = _plain(value)


class _Formats:
    """The format functions of both sinks, sharing one redactor."""

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact

    def console(self, record: Record) -> str:
        extra = _visible_extra(record)
        extra.pop("child", None)
        text = record["message"]
        if extra:
            text += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        exception = _exception_text(record)
        if exception:
            text += "\n" + exception.rstrip("\n")
        record["extra"]["_text"] = self._redact(text)
        return CONSOLE_TEMPLATE

    def json(self, record: Record) -> str:
        payload = {
            "time": record["time"].isoformat(),
            "level": record["level"].name,
            "message": record["message"],
            "logger": record["name"],
            "function": record["function"],
            "line": record["line"],
            "process": record["process"].id,
            "extra": _visible_extra(record),
        }
        exception = _exception_text(record)
        if exception:
            payload["exception"] = exception
        # Redact the decoded strings, not the encoded line: JSON escaping (of quotes, backslashes,
        # control characters) would hide a secret from a search of the encoded text.
        plain = orjson.loads(orjson.dumps(payload, default=str))
        record["extra"]["_json"] = orjson.dumps(self._redact.scrub(plain)).decode()
        return "{extra[_json]}\n"


def _private_file(path: str, flags: int) -> int:
    """Log files are the owner's alone (0600), whatever the process umask."""
    return os.open(path, flags, PRIVATE_FILE)


class _InterceptHandler(logging.Handler):
    """Sends standard-library log records to loguru, keeping level and caller."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: FrameType | None = sys._getframe()
        depth = 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


class LogSetup:
    """The sinks installed by ``configure``; ``close()`` removes them, flushes the file and
    gives the standard-library root logger back its handlers and level, so a configuration
    made for one run (a command, a test) does not outlive it."""

    def __init__(
        self,
        handler_ids: list[int],
        log_file: Path | None,
        root: tuple[list[logging.Handler], int] | None = None,
    ) -> None:
        self.handler_ids = handler_ids
        self.log_file = log_file
        self._root = root

    def close(self) -> None:
        for handler_id in self.handler_ids:
            logger.remove(handler_id)
        self.handler_ids = []
        if self._root is not None:
            handlers, level = self._root
            root = logging.getLogger()
            root.handlers = handlers
            root.setLevel(level)
            logger.configure(extra={}, patcher=None)
            self._root = None

    def __enter__(self) -> LogSetup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def configure(
    *,
    level: str,
    redact: Redactor,
    log_dir: Path | None,
    rotation: str = "50 MB",
    retention: int = 10,
    console: TextIO | None = sys.stderr,
) -> LogSetup:
    """Replace loguru's sinks with ours and route standard-library logging into loguru."""
    root = logging.getLogger()
    previous_root = (list(root.handlers), root.level)
    logger.remove()
    logger.configure(extra={"child": ROOT_CHILD}, patcher=_plain_extras)
    formats = _Formats(redact)
    handler_ids: list[int] = []
    if console is not None:
        handler_ids.append(
            logger.add(
                console,
                level=level,
                format=formats.console,
                colorize=console.isatty(),
                backtrace=False,
                diagnose=False,
            )
        )
    log_file = None
    if log_dir is not None:
        log_file = log_dir / LOG_FILE_NAME
        private_dir(log_dir)
        handler_ids.append(
            logger.add(
                log_file,
                opener=_private_file,  # this file and every one rotation opens after it
                level=level,
                format=formats.json,
                rotation=rotation,
                retention=retention,
                enqueue=True,
                backtrace=False,
                diagnose=False,
                encoding="utf-8",
            )
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    for name in ("hypercorn.error", "hypercorn.access", "httpx", "httpcore", "trio-websocket"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    return LogSetup(handler_ids, log_file, previous_root)
