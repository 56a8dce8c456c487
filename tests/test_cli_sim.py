"""``mm sim``: the simulator on its own gives order and trade ids from the wall clock's
milliseconds, as the embedded ones do, so that a service whose journal remembers the fills of
a simulator restarted under it never takes the new ones for those (ids from 1 again would be:
the fills dropped as seen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mm import clock
from mm.cli import main
from mm.venues.sim.kucoin.server import KucoinSimVenue
from mm.venues.sim.venue import SimVenue

CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


class Built(Exception):
    """Raised by the patched constructor: what it was given, and nothing served."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("built")
        self.kwargs = kwargs


@pytest.mark.parametrize(
    ("venue", "built"), [("kucoin", KucoinSimVenue), ("hyperliquid", SimVenue)]
)
def test_the_simulators_ids_start_from_the_wall_clock(
    venue: str, built: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    def capture(self: object, *args: Any, **kwargs: Any) -> None:
        raise Built(kwargs)

    monkeypatch.setattr(built, "__init__", capture)
    before = clock.wall_ms()
    with pytest.raises(Exception) as raised:  # noqa: PT011 - a group or the error itself
        main(["sim", "-c", str(CONFIG), "--venue", venue, "--port", "0"])
    error: BaseException = raised.value
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, Built)
    assert before <= error.kwargs["first_id"] <= clock.wall_ms()
