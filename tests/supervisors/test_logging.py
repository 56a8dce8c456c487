"""Log records written inside a child carry the child's path in ``record["extra"]["child"]``."""

from __future__ import annotations

from collections.abc import Iterator

import loguru
import pytest
import trio
import trio.testing
from loguru import logger

from supervisors import ChildSpec, Supervisor
from tests.supervisors.helpers import supervise_for


@pytest.fixture
def captured() -> Iterator[list[tuple[str, str | None]]]:
    """(message, extra["child"]) of every record logged while the test runs."""
    records: list[tuple[str, str | None]] = []

    def sink(message: loguru.Message) -> None:
        record = message.record
        records.append((record["message"], record["extra"].get("child")))

    handler_id = logger.add(sink, level="DEBUG")
    try:
        yield records
    finally:
        logger.remove(handler_id)


def talker(text: str) -> ChildSpec:
    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        logger.info("{} before ready", text)
        task_status.started()
        await trio.sleep(1.0)
        logger.info("{} working", text)
        await trio.sleep_forever()

    return ChildSpec(text, run)


async def test_child_log_records_carry_the_child_path(
    autojump_clock: trio.testing.MockClock, captured: list[tuple[str, str | None]]
) -> None:
    inner = Supervisor("root/inner", [talker("deep")])
    outer = Supervisor("root", [talker("alpha"), inner.as_child(), talker("beta")])
    await supervise_for(outer, 5.0)
    logger.info("outside any child")

    by_message = dict(captured)
    assert by_message["alpha before ready"] == "root/alpha"
    assert by_message["alpha working"] == "root/alpha"
    assert by_message["beta working"] == "root/beta"
    assert by_message["deep before ready"] == "root/inner/deep"
    assert by_message["deep working"] == "root/inner/deep"
    assert by_message["outside any child"] is None
