"""The order lane: orders over kept-alive connections, on Trio's in-memory streams (the test
plays the venue's side byte by byte, on virtual time) and over loopback against the embedded
KuCoin face. What each request's bytes are, its answer read, and what a connection that
closes, fails or stays silent means for the order."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import attrs
import orjson
import pytest
import trio
import trio.testing

from mm import clock
from mm.model import (
    CancelOrder,
    ModifyOrder,
    OrderStatus,
    PlaceOrder,
    Rejected,
    Resting,
    Side,
    Tif,
)
from mm.venues.base import OrderFateUnknown, RateLimited, RequestTimeout
from mm.venues.kucoin.client import KucoinClient
from mm.venues.kucoin.http1 import header_block, request_bytes
from mm.venues.kucoin.ids import order_id
from mm.venues.kucoin.instruments import SymbolSpec, parse_symbols
from mm.venues.kucoin.lane import Exchange, NotSent, OrderLane, connect_to
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinNotSent, KucoinRestTransport, KucoinUnavailable
from mm.venues.kucoin.signing import check_request, sign_request
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue
from tests.fixture_paths import KUCOIN
from tests.venues.kucoin.test_client_failures import MESSAGES, sync_state

NOW_MS = 1_764_762_000_123
SYMBOL = "BTC-USDT"
DEADLINE_S = 5.0
OID = order_id(sync_state("x")["orderId"])
CERT, KEY = KUCOIN / "tls_localhost_cert.pem", KUCOIN / "tls_localhost_key.pem"
ORDER = {"clientOid": "mm-1", "symbol": SYMBOL, "side": "buy", "type": "limit"}


@attrs.define(eq=False)
class Venue:
    """The venue's side of the lane's in-memory connections, in the order they were opened."""

    accepted: trio.MemoryReceiveChannel[trio.abc.Stream]
    refuse: bool = False  # connecting fails (the host unreachable)
    opened: int = 0

    async def next(self) -> Server:
        return Server(await self.accepted.receive())


@attrs.define(eq=False)
class Server:
    stream: trio.abc.Stream
    buffer: bytes = b""

    async def request(self) -> tuple[bytes, bytes]:
        """One request: its head (up to the blank line) and its body."""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += await self.receive()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(self.buffer) < length:
            self.buffer += await self.receive()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return head, body

    async def receive(self) -> bytes:
        data = await self.stream.receive_some()
        assert data, "the lane closed the connection"
        return bytes(data)

    async def answer(self, data: object, status: int = 200, extra: str = "") -> None:
        body = orjson.dumps(data)
        head = f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        await self.stream.send_all(head.encode() + body)

    async def ok(self, data: object, extra: str = "") -> None:
        await self.answer({"code": "200000", "data": data}, extra=extra)


@asynccontextmanager
async def lane_rest(connections: int = 1) -> AsyncIterator[tuple[KucoinRestTransport, Venue]]:
    send, receive = trio.open_memory_channel[trio.abc.Stream](10)
    venue = Venue(receive)

    async def connect() -> trio.abc.Stream:
        if venue.refuse:
            raise OSError("connection refused")
        client, server = trio.testing.memory_stream_pair()
        venue.opened += 1
        await send.send(server)
        return client

    async with KucoinRestTransport(
        "https://api.kucoin.com",
        DEV_KEY,
        budget=RateBudget(),
        now_ms=lambda: NOW_MS,
        deadline_s=DEADLINE_S,
        lane_connections=connections,
        connect=connect,
    ) as rest:
        assert rest.lane is not None
        with trio.fail_after(1):
            await rest.lane.wait_idle(connections)
        yield rest, venue


def spec() -> SymbolSpec:
    return parse_symbols([MESSAGES["rest_symbol_BTC-USDT"]])[0]


def client_of(rest: KucoinRestTransport) -> KucoinClient:
    client = KucoinClient(rest, [SYMBOL], now_ms=lambda: NOW_MS)
    client._specs = {SYMBOL: spec()}  # (the listing is a read on httpx: not the lane's)
    return client


def order(cloid: str = "mm-a") -> PlaceOrder:
    return PlaceOrder(SYMBOL, Side.BUY, 50_000.0, 0.001, Tif.GTC, cloid)


def lines(head: bytes) -> list[str]:
    return head.decode().split("\r\n")


async def test_a_request_carries_exactly_what_is_signed(autojump_clock: trio.abc.Clock) -> None:
    async with lane_rest() as (rest, venue), trio.open_nursery() as nursery:
        server = await venue.next()
        answered: list[object] = []

        async def place() -> None:
            answered.append(await rest.request("POST", "/api/v1/hf/orders/sync", body=ORDER))

        nursery.start_soon(place)
        head, body = await server.request()
        await server.ok({"orderId": "o1"})
    assert answered == [{"orderId": "o1"}]
    assert body == orjson.dumps(ORDER)
    request_line, *header_lines = lines(head)
    assert request_line == "POST /api/v1/hf/orders/sync HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in header_lines)
    signed = sign_request(DEV_KEY, NOW_MS, "POST", "/api/v1/hf/orders/sync", body.decode())
    assert {name: headers[name] for name in signed} == signed
    assert headers["Host"] == "api.kucoin.com"
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body))
    assert headers["Accept-Encoding"] == "identity"
    keys = {DEV_KEY.key.reveal(): DEV_KEY}
    assert (
        check_request(keys, headers, "POST", "/api/v1/hf/orders/sync", body.decode(), NOW_MS)
        is None
    )


async def test_a_cancel_signs_its_query_unencoded_and_sends_it_encoded(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with lane_rest() as (rest, venue), trio.open_nursery() as nursery:
        server = await venue.next()
        query = {"symbol": "A B"}
        path = "/api/v1/hf/orders/client-order/mm-a"
        nursery.start_soon(partial(rest.request, "DELETE", path, query=query))
        head, body = await server.request()
        await server.ok({"clientOid": "mm-a"})
    assert body == b""
    assert lines(head)[0] == "DELETE /api/v1/hf/orders/client-order/mm-a?symbol=A+B HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines(head)[1:])
    signed = sign_request(
        DEV_KEY, NOW_MS, "DELETE", "/api/v1/hf/orders/client-order/mm-a?symbol=A B"
    )
    assert headers["KC-API-SIGN"] == signed["KC-API-SIGN"]


async def test_requests_reuse_one_connection_and_reads_stay_off_the_lane(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with lane_rest() as (rest, venue), trio.open_nursery() as nursery:
        client = client_of(rest)
        server = await venue.next()

        async def serve() -> None:
            for n in range(3):
                await server.request()
                await server.ok(sync_state(f"mm-{n}"))

        nursery.start_soon(serve)
        for n in range(3):
            assert await client.place([order(f"mm-{n}")]) == [Resting(OID, f"mm-{n}")]
    assert venue.opened == 1


async def test_a_connection_the_server_closes_after_its_answer_is_never_written_on_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    """hypercorn's 1,000th answer says ``Connection: close``: the next order goes on a new
    connection, opened in the background, and nothing is sent twice."""
    async with lane_rest() as (rest, venue), trio.open_nursery() as nursery:
        client = client_of(rest)
        first = await venue.next()

        async def serve_first() -> None:
            await first.request()
            await first.ok(sync_state("mm-1"), extra="Connection: close\r\n")

        nursery.start_soon(serve_first)
        assert await client.place([order("mm-1")]) == [Resting(OID, "mm-1")]
        second = await venue.next()  # reopened without a request asking
        assert rest.lane is not None
        await rest.lane.wait_idle(1)

        async def serve_second() -> None:
            _, body = await second.request()
            assert orjson.loads(body)["clientOid"] == "mm-2"
            await second.ok(sync_state("mm-2"))

        nursery.start_soon(serve_second)
        assert await client.place([order("mm-2")]) == [Resting(OID, "mm-2")]
        # The first connection got nothing more, and was closed by the lane.
        assert await first.stream.receive_some() == b""
    assert venue.opened == 2


async def test_a_connection_closed_while_idle_is_reopened_before_the_next_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with lane_rest() as (rest, venue), trio.open_nursery() as nursery:
        assert rest.lane is not None
        client = client_of(rest)
        first = await venue.next()
        await first.stream.aclose()  # the server's keep-alive timeout
        second = await venue.next()
        await rest.lane.wait_idle(1)

        async def serve() -> None:
            await second.request()
            await second.ok(sync_state("mm-1"))

        nursery.start_soon(serve)
        assert await client.place([order("mm-1")]) == [Resting(OID, "mm-1")]
    assert venue.opened == 2


async def test_a_connection_closed_mid_answer_leaves_the_order_unknown_and_unsent_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with lane_rest() as (rest, venue), trio.open_nursery() as nursery:
        client = client_of(rest)
        first = await venue.next()

        async def cut() -> None:
            await first.request()
            await first.stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
            await first.stream.aclose()

        nursery.start_soon(cut)
        with pytest.raises(OrderFateUnknown) as unknown:
            await client.place([order("mm-1")])
        second = await venue.next()
        with trio.move_on_after(1):  # nothing is re-sent on the new connection
            await second.request()
            pytest.fail("the order was sent again")
    assert unknown.value.cloids == ("mm-1",)
    assert unknown.value.lands_by_ms == NOW_MS + client.landing_window_ms


async def test_no_answer_by_the_deadline_is_a_timeout_and_the_connection_is_dropped(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with lane_rest() as (rest, venue):
        client = client_of(rest)
        first = await venue.next()
        started = trio.current_time()
        with pytest.raises(OrderFateUnknown) as unknown:
            await client.place([order("mm-1")])
        assert trio.current_time() - started == pytest.approx(DEADLINE_S)
        assert "deadline" in unknown.value.cause
        assert unknown.value.lands_by_ms == NOW_MS + client.landing_window_ms
        head, _ = await first.request()  # it was written once ...
        assert head.startswith(b"POST /api/v1/hf/orders/sync ")
        assert await first.stream.receive_some() == b""  # ... and its connection dropped
        await venue.next()  # and opened again
        with pytest.raises(RequestTimeout):
            await rest.request("DELETE", "/api/v1/hf/orders/x", query={"symbol": SYMBOL})


async def test_a_rate_limit_and_a_server_error_map_as_on_httpx(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with lane_rest() as (rest, venue), trio.open_nursery() as nursery:
        client = client_of(rest)
        server = await venue.next()

        async def serve() -> None:
            await server.request()
            limited = {"code": "429000", "msg": "Too Many Requests"}
            reset = "gw-ratelimit-limit: 4000\r\ngw-ratelimit-remaining: 0\r\n"
            await server.answer(limited, 429, reset + "gw-ratelimit-reset: 7000\r\n")
            await server.request()
            await server.answer({"code": "500000", "msg": "down"}, 503)

        nursery.start_soon(serve)
        with pytest.raises(RateLimited):  # refused whole: nothing acted
            await client.place([order("mm-1")])
        assert rest.budget.refusals == 1
        assert rest.budget.pool("Spot").quota == 4000
        started = trio.current_time()
        with pytest.raises(OrderFateUnknown) as unknown:  # the budget waited out the reset
            await client.place([order("mm-2")])
        assert trio.current_time() - started >= 7.0
        assert "HTTP 503" in unknown.value.cause
        assert unknown.value.lands_by_ms is not None


async def test_with_no_connection_up_an_order_is_not_sent(autojump_clock: trio.abc.Clock) -> None:
    async with lane_rest() as (rest, venue):
        client = client_of(rest)
        venue.refuse = True
        server = await venue.next()
        await server.stream.aclose()
        with pytest.raises(KucoinNotSent):
            await client.place([order("mm-1")])
        with pytest.raises(KucoinUnavailable):
            await rest.request("DELETE", "/api/v1/hf/orders/x", query={"symbol": SYMBOL})
        with pytest.raises(KucoinNotSent):  # one alter, refused whole
            await client.modify([ModifyOrder(order("mm-1"), oid=None)])
        results = await client.modify([ModifyOrder(order(cloid)) for cloid in ("mm-1", "mm-2")])
        assert all(isinstance(result, Rejected) for result in results)
        venue.refuse = False
        await venue.next()  # the keeper's backoff, then a connection again


async def test_orders_over_loopback_to_the_face() -> None:
    face = KucoinSimVenue(seed=3)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(face.run)
        async with KucoinRestTransport(
            url, DEV_KEY, budget=RateBudget(), now_ms=clock.wall_ms, deadline_s=10.0
        ) as rest:
            assert rest.lane is not None
            with trio.fail_after(10):
                await rest.lane.wait_idle(2)
            client = KucoinClient(rest, ["ETH-USDT"])
            await client.instruments()
            opened = rest.lane.opened
            low = PlaceOrder("ETH-USDT", Side.BUY, 100.0, 0.01, Tif.GTC, client.new_client_id())
            (placed,) = await client.place([low])
            assert isinstance(placed, Resting), placed
            (moved,) = await client.modify([ModifyOrder(attrs.evolve(low, px=110.0), placed.oid)])
            assert isinstance(moved, Resting)
            assert await client.cancel([CancelOrder("ETH-USDT", moved.oid)]) == [None]
            assert rest.lane.opened == opened  # the same kept-alive connections
            assert rest.lane.lost == 0
        nursery.cancel_scope.cancel()


async def test_https_to_a_host_with_a_certificate() -> None:
    """The real venue's scheme: TLS with the host's name checked, the request and its answer
    through it (a certificate for localhost, trusted by this test alone)."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(
        KUCOIN / "tls_localhost_cert.pem", KUCOIN / "tls_localhost_key.pem"
    )
    client_context = ssl.create_default_context(cafile=str(CERT))
    seen: list[bytes] = []

    async def serve(stream: trio.SSLStream[trio.SocketStream]) -> None:
        server = Server(stream)
        head, _ = await server.request()
        seen.append(head)
        await server.ok({"orderId": "o1"})

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_ssl_over_tcp, serve, 0, server_context, host="127.0.0.1")
        )
        port = listeners[0].transport_listener.socket.getsockname()[1]
        connect, host = connect_to(f"https://localhost:{port}", context=client_context)
        assert host == f"localhost:{port}"
        async with OrderLane(connect, connections=1) as lane:
            with trio.fail_after(10):
                await lane.wait_idle()
                answer = await lane.exchange(
                    request_bytes("POST", "/x", header_block([("Host", host)]), b"{}")
                )
        nursery.cancel_scope.cancel()
    assert answer.status == 200
    assert orjson.loads(answer.body)["data"] == {"orderId": "o1"}
    assert seen[0].startswith(b"POST /x HTTP/1.1\r\nHost: localhost:")


async def test_https_refuses_a_host_it_cannot_trust() -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(
        KUCOIN / "tls_localhost_cert.pem", KUCOIN / "tls_localhost_key.pem"
    )

    async def serve(stream: trio.SSLStream[trio.SocketStream]) -> None:
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.do_handshake()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_ssl_over_tcp, serve, 0, server_context, host="127.0.0.1")
        )
        port = listeners[0].transport_listener.socket.getsockname()[1]
        connect, _ = connect_to(f"https://localhost:{port}")  # the system's trust store
        with pytest.raises(trio.BrokenResourceError) as refused:
            await connect()
        assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
        nursery.cancel_scope.cancel()


async def test_requests_beyond_the_connections_wait_for_one_and_never_open_another(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Two orders at once on a lane of one connection: the second is written when the first is
    answered, on the same connection; one that finds none free by its deadline is not sent."""
    async with lane_rest(connections=1) as (rest, venue), trio.open_nursery() as nursery:
        assert rest.lane is not None
        server = await venue.next()
        answers: list[object] = []

        async def place(cloid: str) -> None:
            body = ORDER | {"clientOid": cloid}
            answers.append(await rest.request("POST", "/api/v1/hf/orders/sync", body=body))

        nursery.start_soon(place, "mm-1")
        nursery.start_soon(place, "mm-2")
        _, first = await server.request()
        await trio.sleep(1)  # the second waits, unwritten
        assert server.buffer == b""
        await server.ok({"n": 1})
        _, second = await server.request()
        await server.ok({"n": 2})
        assert {orjson.loads(b)["clientOid"] for b in (first, second)} == {"mm-1", "mm-2"}
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(answers, key=str) == [{"n": 1}, {"n": 2}]
        assert venue.opened == 1

        async def held() -> None:  # holds the connection, unanswered
            with pytest.raises(RequestTimeout):
                await place("mm-3")

        nursery.start_soon(held)
        await server.request()
        with pytest.raises(KucoinNotSent):
            await rest.request("POST", "/api/v1/hf/orders/sync", body=ORDER)
        assert server.buffer == b""


async def test_hypercorns_close_after_its_thousandth_answer_loses_nothing() -> None:
    """The face's server answers its 1,000th request on a connection with ``Connection:
    close``: the 1,001st goes on a connection opened again, and every request is answered."""
    face = KucoinSimVenue(seed=3)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(face.run)
        async with KucoinRestTransport(
            url,
            DEV_KEY,
            budget=RateBudget(),
            now_ms=clock.wall_ms,
            deadline_s=10.0,
            lane_connections=1,
        ) as rest:
            assert rest.lane is not None
            client = KucoinClient(rest, ["ETH-USDT"])
            await client.instruments()
            probe = PlaceOrder("ETH-USDT", Side.BUY, 100.0, 0.01, Tif.GTC, "mm-test")
            for _ in range(1_002):
                assert await client.test_order(probe) is None
            assert rest.lane.opened == 2
            assert rest.lane.lost == 0
        nursery.cancel_scope.cancel()


# --- send_now: the write at once, the answer awaited later ---------------------------------------


class WritesNow(trio.abc.Stream):
    """The lane's side of an in-memory connection that can be written with no yield, as a
    plain socket can: ``send_now`` puts what it takes (all of it, or the first ``takes``
    bytes) straight into the venue's side, or raises ``refuse`` as a socket's write(2) would."""

    def __init__(
        self,
        to_venue: trio.testing.MemoryReceiveStream,
        from_venue: trio.testing.MemoryReceiveStream,
        *,
        takes: int | None = None,
        refuse: OSError | None = None,
    ) -> None:
        self._to_venue = to_venue
        self._from_venue = from_venue
        self.takes = takes
        self.refuse = refuse
        self.written: list[int] = []  # what each send_now took

    def send_now(self, data: bytes) -> int:
        if self.refuse is not None:
            raise self.refuse
        taken = len(data) if self.takes is None else min(self.takes, len(data))
        self._to_venue.put_data(bytes(data[:taken]))
        self.written.append(taken)
        return taken

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        self._to_venue.put_data(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._from_venue.receive_some(max_bytes)

    async def aclose(self) -> None:
        self._to_venue.put_eof()
        await self._from_venue.aclose()


@attrs.define(eq=False)
class NowVenue(Venue):
    """``Venue``, its connections ``WritesNow`` streams (the last one opened in ``streams``);
    ``hold`` keeps connecting waiting until it is set."""

    streams: list[WritesNow] = attrs.Factory(list)
    takes: int | None = None
    refuse_write: OSError | None = None
    hold: trio.Event | None = None


def writes_now_connect(
    venue: NowVenue, send: trio.MemorySendChannel[trio.abc.Stream]
) -> Callable[[], Awaitable[trio.abc.Stream]]:
    async def connect() -> trio.abc.Stream:
        if venue.hold is not None:
            await venue.hold.wait()
        to_venue = trio.testing.MemoryReceiveStream()
        venue_send, from_venue = trio.testing.memory_stream_one_way_pair()
        stream = WritesNow(to_venue, from_venue, takes=venue.takes, refuse=venue.refuse_write)
        venue.streams.append(stream)
        venue.opened += 1
        await send.send(trio.StapledStream(venue_send, to_venue))
        return stream

    return connect


@asynccontextmanager
async def now_lane(
    connections: int = 1, *, hold: trio.Event | None = None, **venue_args: object
) -> AsyncIterator[tuple[OrderLane, NowVenue]]:
    send, receive = trio.open_memory_channel[trio.abc.Stream](10)
    venue = NowVenue(receive, hold=hold, **venue_args)  # type: ignore[arg-type]
    async with OrderLane(writes_now_connect(venue, send), connections=connections) as lane:
        yield lane, venue


def raw(cloid: str) -> bytes:
    """A request as the lane carries it (the lane writes bytes: it neither signs nor reads)."""
    body = orjson.dumps(ORDER | {"clientOid": cloid})
    return request_bytes("POST", "/api/v1/hf/orders/sync", header_block([("Host", "v")]), body)


async def nothing_more(server: Server, wait_s: float = 1.0) -> bool:
    """Whether the venue's side got no more bytes within ``wait_s`` (virtual)."""
    with trio.move_on_after(wait_s):
        server.buffer += await server.receive()
    return server.buffer == b""


async def test_send_now_writes_at_once_and_another_task_awaits_the_answer(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with now_lane() as (lane, venue), trio.open_nursery() as nursery:
        server = await venue.next()
        await lane.wait_idle()
        assert lane.ready_now()
        request = raw("mm-1")
        exchange = lane.send_now(request)
        assert exchange is not None
        assert venue.streams[0].written == [len(request)]  # written by the call itself
        assert not exchange.unsent
        assert not lane.ready_now()  # its one connection is busy now
        answers: list[object] = []

        async def await_it() -> None:
            answers.append(orjson.loads((await exchange.answer()).body))

        nursery.start_soon(await_it)
        head, body = await server.request()
        assert head + b"\r\n\r\n" + body == request
        await server.ok({"orderId": "o1"})
        await lane.wait_idle()
        await trio.testing.wait_all_tasks_blocked()
        assert answers == [{"code": "200000", "data": {"orderId": "o1"}}]
        assert lane.ready_now()  # the connection is free again, and the same one
        assert venue.opened == 1
        assert lane.lost == 0


async def test_send_now_with_no_connection_idle_writes_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    hold = trio.Event()
    async with now_lane(hold=hold) as (lane, venue), trio.open_nursery() as nursery:
        # Before any connection opened: nothing to write on, nothing kept for later.
        assert not lane.ready_now()
        assert lane.send_now(raw("mm-early")) is None
        hold.set()
        server = await venue.next()
        await lane.wait_idle()
        assert await nothing_more(server)
        # Its one connection busy with a request: the next is not written behind it.
        exchange = lane.send_now(raw("mm-1"))
        assert exchange is not None
        assert not lane.ready_now()
        assert lane.send_now(raw("mm-2")) is None
        _, body = await server.request()
        assert orjson.loads(body)["clientOid"] == "mm-1"
        assert await nothing_more(server)
        nursery.start_soon(server.ok, {"n": 1})
        assert orjson.loads((await exchange.answer()).body)["data"] == {"n": 1}
        assert await nothing_more(server)
        assert venue.streams[0].written == [len(raw("mm-1"))]


async def test_streams_that_cannot_write_at_once_get_none_and_exchange_still_works(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Trio's in-memory streams have no ``send_now`` (nor does TLS): ``send_now`` is None with
    the connection idle, and ``exchange`` writes by ``send_all`` as before."""
    async with lane_rest() as (rest, venue), trio.open_nursery() as nursery:
        lane = rest.lane
        assert lane is not None
        server = await venue.next()
        assert lane.idle == 1
        assert not lane.ready_now()
        assert lane.send_now(raw("mm-1")) is None
        assert lane.idle == 1
        assert await nothing_more(server)
        answers: list[object] = []

        async def exchange() -> None:
            answers.append(orjson.loads((await lane.exchange(raw("mm-2"))).body)["data"])

        nursery.start_soon(exchange)
        _, body = await server.request()
        assert orjson.loads(body)["clientOid"] == "mm-2"
        await server.ok({"n": 2})
        await lane.wait_idle()
        await trio.testing.wait_all_tasks_blocked()
        assert answers == [{"n": 2}]


async def test_a_write_the_socket_refuses_is_not_sent_and_drops_the_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    reset = ConnectionResetError(104, "Connection reset by peer")
    async with now_lane(refuse_write=reset) as (lane, venue):
        first = await venue.next()
        await lane.wait_idle()
        with pytest.raises(NotSent, match="before the request went out"):
            lane.send_now(raw("mm-1"))
        assert first.buffer == b""
        assert await first.stream.receive_some() == b""  # dropped, with nothing on it
        venue.refuse_write = None
        second = await venue.next()  # and opened again
        await lane.wait_idle()
        assert venue.opened == 2
        assert lane.lost == 0  # nothing of it went out: not a lost request
        assert await nothing_more(second)  # nor is it written again


async def test_what_the_socket_did_not_take_is_written_by_the_answer(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with now_lane(takes=10) as (lane, venue), trio.open_nursery() as nursery:
        server = await venue.next()
        await lane.wait_idle()
        request = raw("mm-1")
        exchange = lane.send_now(request)
        assert exchange is not None
        assert bytes(exchange.unsent) == request[10:]
        assert bytes(await server.stream.receive_some()) == request[:10]  # all there is yet
        assert await nothing_more(server)
        answers: list[object] = []

        async def await_it() -> None:
            answers.append(orjson.loads((await exchange.answer()).body)["data"])

        nursery.start_soon(await_it)
        server.buffer = request[:10]
        head, body = await server.request()
        assert head + b"\r\n\r\n" + body == request  # the rest, once, in order
        await server.ok({"n": 1})
        await lane.wait_idle()
        await trio.testing.wait_all_tasks_blocked()
        assert answers == [{"n": 1}]
        assert venue.opened == 1


async def test_an_answer_past_the_deadline_is_too_slow_and_the_connection_dropped(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with now_lane() as (lane, venue):
        first = await venue.next()
        await lane.wait_idle()
        started = trio.current_time()
        exchange = lane.send_now(raw("mm-1"), started + DEADLINE_S)
        assert exchange is not None
        with pytest.raises(trio.TooSlowError):
            await exchange.answer()
        assert trio.current_time() - started == pytest.approx(DEADLINE_S)
        await first.request()
        assert await first.stream.receive_some() == b""
        await venue.next()
        assert lane.lost == 0


async def test_a_caller_cancelled_while_awaiting_the_answer_drops_the_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with now_lane() as (lane, venue):
        first = await venue.next()
        await lane.wait_idle()
        exchange = lane.send_now(raw("mm-1"))
        assert exchange is not None
        with trio.move_on_after(1):
            await exchange.answer()
        await first.request()
        assert await first.stream.receive_some() == b""  # (a late answer is nobody's)
        with pytest.raises(trio.BrokenResourceError):
            await first.ok({"late": True})
        second = await venue.next()
        await lane.wait_idle()
        assert venue.opened == 2
        assert await nothing_more(second)


async def test_a_cancel_before_exchange_takes_a_connection_leaves_the_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with now_lane() as (lane, venue):
        server = await venue.next()
        await lane.wait_idle()
        with trio.CancelScope() as scope:
            scope.cancel()
            await lane.exchange(raw("mm-1"))
        assert scope.cancelled_caught
        assert lane.idle == 1
        assert lane.ready_now()
        assert await nothing_more(server)
        assert venue.opened == 1


async def test_send_now_to_the_face_over_loopback_places_the_order() -> None:
    """A plain TCP connection (``os.write`` on its socket): the signed order written by
    ``send_now`` rests at the face, and one that crosses fills; each answer read by
    ``Exchange.answer`` in a task other than the one that wrote it."""
    face = KucoinSimVenue(seed=3)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(face.run)
        async with KucoinRestTransport(
            url, DEV_KEY, budget=RateBudget(), now_ms=clock.wall_ms, deadline_s=10.0
        ) as rest:
            lane = rest.lane
            assert lane is not None
            with trio.fail_after(10):
                await lane.wait_idle(2)
            client = KucoinClient(rest, ["ETH-USDT"])
            await client.instruments()
            mid = face.market.mids()["ETH-USDT"]
            resting = {"price": "100", "size": "0.01", "timeInForce": "GTC"}
            crossing = {"price": f"{mid * 1.05:.2f}", "size": "0.01", "timeInForce": "IOC"}
            host = url.split("//", 1)[1].rstrip("/")
            datas: list[dict[str, object]] = []
            for cloid, fields in (("now-rest", resting), ("now-take", crossing)):
                body = orjson.dumps(
                    {"clientOid": cloid, "symbol": "ETH-USDT", "side": "buy", "type": "limit"}
                    | fields
                )
                signed = sign_request(
                    DEV_KEY, clock.wall_ms(), "POST", "/api/v1/hf/orders/sync", body.decode()
                )
                headers = [("Host", host), ("Content-Type", "application/json"), *signed.items()]
                request = request_bytes(
                    "POST", "/api/v1/hf/orders/sync", header_block(headers), body
                )
                assert lane.ready_now()
                exchange = lane.send_now(request, trio.current_time() + 10.0)
                assert exchange is not None
                assert not exchange.unsent  # the socket took it all at once

                async def await_it(exchange: Exchange = exchange) -> None:
                    answer = await exchange.answer()
                    assert answer.status == 200, answer.body
                    datas.append(orjson.loads(answer.body)["data"])

                async with trio.open_nursery() as awaiting:
                    awaiting.start_soon(await_it)
            assert [data["clientOid"] for data in datas] == ["now-rest", "now-take"]
            placed = await client.order_status(cloid="now-rest")
            taken = await client.order_status(cloid="now-take")
            assert placed is not None
            assert taken is not None
            assert placed.status is OrderStatus.OPEN
            assert taken.status is OrderStatus.FILLED
            assert lane.lost == 0
        nursery.cancel_scope.cancel()
