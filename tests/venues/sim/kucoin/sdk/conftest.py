"""Fixtures for driving KuCoin's official SDK (``kucoin-universal-sdk``), unchanged, against
the simulator's KuCoin face.

The SDK is synchronous (requests, and websocket-client threads), so the face runs in a thread
of its own with its own Trio loop, on loopback, one for the session; every test that trades
uses orders of its own (client oids), so tests share it without seeing each other's.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import trio
from kucoin_universal_sdk.api.client import DefaultClient
from kucoin_universal_sdk.model.client_option import ClientOptionBuilder
from kucoin_universal_sdk.model.transport_option import TransportOptionBuilder
from kucoin_universal_sdk.model.websocket_option import WebSocketClientOptionBuilder

from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue

START_WITHIN = 30.0  # seconds for the face to listen (a hang guard)
STOP_WITHIN = 30.0  # seconds for an SDK WebSocket client to stop (a hang guard)


@pytest.fixture(scope="session")
def face() -> Iterator[KucoinSimVenue]:
    """The KuCoin face, served from a thread; stopped at the end of the session."""
    started: queue.Queue[tuple[trio.lowlevel.TrioToken, trio.CancelScope] | BaseException] = (
        queue.Queue()
    )
    venue = KucoinSimVenue(seed=17)

    def serve() -> None:
        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(venue.run)
                started.put((trio.lowlevel.current_trio_token(), nursery.cancel_scope))

        try:
            trio.run(main)
        except BaseException as error:  # reported to the fixture, which fails with it
            started.put(error)

    thread = threading.Thread(target=serve, name="kucoin-face", daemon=True)
    thread.start()
    outcome = started.get(timeout=START_WITHIN)
    if isinstance(outcome, BaseException):
        raise outcome
    token, scope = outcome
    try:
        yield venue
    finally:
        trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(START_WITHIN)


def sdk_client(url: str, *, secret: str | None = None, interceptors: Sequence[Any] = ()) -> Any:
    """An SDK client with the simulator's development key (or another ``secret``), and the
    SDK's own request ``interceptors`` (its hook for what goes on the wire, if any)."""
    option = (
        ClientOptionBuilder()
        .set_key(DEV_KEY.key.reveal())
        .set_secret(secret if secret is not None else DEV_KEY.secret.reveal())
        .set_passphrase(DEV_KEY.passphrase.reveal())
        .set_spot_endpoint(url)
        .set_futures_endpoint(url)
        .set_broker_endpoint(url)
        .set_transport_option(TransportOptionBuilder().set_interceptors(list(interceptors)).build())
        .set_websocket_client_option(WebSocketClientOptionBuilder().build())
        .build()
    )
    return DefaultClient(option)


@pytest.fixture
def client(face: KucoinSimVenue) -> Any:
    return sdk_client(face.url)


@pytest.fixture(scope="session")
def stop_later(face: KucoinSimVenue) -> Iterator[Callable[[Any], None]]:
    """Stops an SDK WebSocket service on a thread of its own, joined at the end of the session
    (before the face stops).

    The SDK's ``stop()`` closes the socket and then joins websocket-client's ``run_forever``
    thread, which it started without a ``ping_timeout``: that thread sits out its dispatcher's
    10 s select timeout before it sees the close. No option of the SDK's
    (``WebSocketClientOption``: reconnect, dial and write timeouts, buffers) reaches that
    select, so every WebSocket test waited 10 s after its assertions were settled. The stop
    itself is the same call; a stop that raises or hangs fails the session's teardown.
    """
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def stop(service: Any) -> None:
        def run() -> None:
            try:
                service.stop()
            except BaseException as error:  # reported at the end of the session
                errors.append(error)

        thread = threading.Thread(target=run, name="sdk-ws-stop", daemon=True)
        thread.start()
        threads.append(thread)

    yield stop
    for thread in threads:
        thread.join(STOP_WITHIN)
    assert not [thread for thread in threads if thread.is_alive()], "an SDK stop hung"
    assert not errors, errors
