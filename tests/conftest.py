"""Shared fixtures: config files in a temporary directory, and a service running in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, settings
from trio.testing import MockClock

from mm.app import Service
from mm.config import Config, Secrets, load_config, resolve_secrets
from tests.virtual_clock import thread_held_clock

ConfigWriter = Callable[..., Path]

# Hypothesis times each example (its 200 ms deadline) and its input generation (the too_slow
# health check) on the wall clock: on a loaded 2-core CI machine a preemption or a collection
# during a draw fails a correct test (tests/test_book.py once took 1.2 s for one integer
# draw). Tests never assert on wall time, so neither may Hypothesis; its other health checks
# stay on.
settings.register_profile("mm", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mm")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules marked ``slow`` first, each kept whole and in order: pytest-xdist hands each
    worker a contiguous share and the idle one steals from the tail of the other's, so a
    long module left near the end is a long tail with one core idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def render_toml(sections: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


@pytest.fixture
def autojump_clock() -> MockClock:
    """pytest-trio's autojump clock, except that it does not jump while a worker thread works
    (``tests/virtual_clock.py``): every test on virtual time gets it by the usual name."""
    return thread_held_clock()


@pytest.fixture
def write_config(tmp_path: Path) -> ConfigWriter:
    """Write a config.toml in tmp_path: run_dir tmp_path/run, admin on a free loopback port."""

    def write(**sections: dict[str, Any]) -> Path:
        merged: dict[str, dict[str, Any]] = {
            "service": {"run_dir": "run", "json_logs": True, "shutdown_timeout": 5.0},
            "admin": {"host": "127.0.0.1", "port": 0},
            "supervision": {"backoff_initial": 0.01, "backoff_cap": 0.05},
        }
        for section, values in sections.items():
            merged.setdefault(section, {}).update(values)
        path = tmp_path / "config.toml"
        path.write_text(render_toml(merged))
        return path

    return write


@pytest.fixture
def load(write_config: ConfigWriter) -> Callable[..., tuple[Config, Secrets]]:
    def load_with(environ: dict[str, str] | None = None, **sections: Any) -> tuple[Config, Secrets]:
        env = environ or {}
        config = load_config(write_config(**sections), env)
        return config, resolve_secrets(config, env)

    return load_with


@pytest.fixture
async def running(
    load: Callable[..., tuple[Config, Secrets]],
) -> AsyncIterator[Service]:
    """A service started in-process on loopback; stopped (if still running) at the end."""
    config, secrets = load()
    service = Service(config, secrets)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        yield service
        service.request_stop("test finished")


@pytest.fixture
async def admin(running: Service) -> AsyncIterator[httpx.AsyncClient]:
    assert running.admin_url is not None
    async with httpx.AsyncClient(base_url=running.admin_url, timeout=5.0) as client:
        yield client


async def eventually(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    with trio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - state kept by another task, no event to wait on
            await trio.sleep(0.02)
