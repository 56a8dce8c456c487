"""Benchmark: triangular arbitrage at KuCoin's size, and frame in -> first leg written (issue 18).

A synthetic but KuCoin-shaped symbol graph: about 1,000 pairs (``--pairs``) over about 300
currencies (``--currencies``), every base quoted in USDT and, each with its own odds, in BTC,
USDC, ETH and KCS, plus the cross pairs among those quotes (BTC-USDT, ETH-BTC, KCS-USDT, ...).
Each currency has a dollar price (log-uniform from 0.0001 to 1,000); a pair's mid is the ratio
of its currencies' prices moved by a few bps at random, so that some triangles show a profit.
Instruments follow KuCoin's grid: a tick of five significant figures at the mid, a lot worth
about a cent, a minimum size worth about ten cents, a minimum funds of 0.1 USD in the quote, a
funds increment (``quoteIncrement``) of a hundredth of a cent; a taker fee of 0.1 % on every
pair. Books hold 20 levels a side (``--levels``), one to five ticks apart, each worth 50 to
2,000 USD. The evaluation terms are those of ``[triarb]``'s defaults: a start volume of 100 in
the primary (primaries USDT, USDC and BTC: BTC triangles are depth-limited), books up to 500 ms
old, a minimum profit of 5 bps. Every book is stamped with the same venue time, the evaluation's
now: none is stale, so every evaluation passes the gates and walks its legs (the costly case).

What it measures, in this order:

- **discovery**: ``triangles.discover`` then ``index`` over the instruments: time (median of
  ``--discoveries`` runs), the triangles found per primary, and how many a pair is in;
- **one triangle**: ``triangles.evaluate`` of one triangle through BTC-USDT, on three views
  just made of its books (as a view is when its update arrives), then again on the same views
  (as later triangles of the same update read the books an earlier one read);
- **book update**: ``signals.Evaluator.on_book`` for a new BTC-USDT book (the busiest pair: all
  its affected triangles evaluated, signals sent down a one-slot channel and the rest dropped),
  p50 and p99 per update and evaluations per second; then the same for a pair drawn at random
  from all pairs at each update (most pairs are in few triangles).

Baselines, measured in the same run and interleaved with the evaluations (the machine is shared,
so the ratios are what compare across runs):

- **orjson l2**: ``orjson.loads`` of a level-2 message of the same depth (KuCoin's
  ``/spotMarket/level2Depth50`` shape: decimal strings), the least a book update costs;
- **float walk**: for each triangle of the same update, the three books' levels walked in floats
  (price times size summed to the start volume): the walk the evaluation does, without its
  ``Decimal`` exactness, increments, minimums and fees.

Then **frame in -> first leg written** (issue 18's target: p50 under 300 us, p99 under 1 ms),
through the service's own pipeline in this one process, assembled as ``mm/app.py`` assembles it
on ``config.triarb.toml``: the KuCoin venue service (market and user WebSockets, the level-2
books, the startup sequence, user-event routing), the ``triarb`` strategy in ``Trading``'s
strategy task, the ``TriangleDesk`` and its executor slots, ``RouterVenue``, the order router
and ``KucoinClient`` over the signed REST, against the embedded KuCoin face
(``KucoinSimVenue``) on loopback. Opened, because triangles come every ~100 ms here, not a few a
day: the triangles a minute, the pre-trade order rate and duplicate window, the face's request
quotas; the face's market loop never steps and has no outside takers (the rounds move it).

Each round: restore the face (no dislocation, BTC-USDT and ETH-USDT moved 1 bp so that every
book is fresh; ETH-BTC's increment first) and let everything settle; one bare HTTP round trip to
the face (the baseline: ``GET /api/v1/timestamp`` on a kept-alive connection, h11 alone); then
the face's ETH-BTC mid is dislocated 60 bps (one way, then the other: both triangles in turn),
its provider requotes, and that one level-2 increment is pushed (not its ticker, which would be
sent and read inside the span; it goes with the next publish). The span starts at the frame's
arrival stamp (``Book.received_ns``: ``KucoinWs._handle``'s first act on the message, the
trigger book's as the bus holds it when the leg is written) and ends when the kernel took the
last byte of the first leg's ``POST /api/v1/hf/orders/sync``: the REST transport's order lane's
connections are ``StampedStream``s, written as a plain socket is (``send_now``: an ``os.write``
with no yield, the leg written from the feed's task when a slot waits) and, for what that left,
by a ``send_all`` that is an ``os.write`` with no yield after it either (Trio's ``send_all``
yields after the send, which in one process would let the face read and answer the request
before the stamp). The triangle then runs its three legs; the
round waits until no triangle is in flight (the dislocation makes a few more signals while it
holds: they run, profitably, before the restore). Printed: p50/p99 of the span beside the round
trip's, the span's parts (to the triangle started for a slot: claimed and admitted, to leg 1
fired, to the write; from the triangle's report), and from every fifth round, run under a Trio
instrument (``StepTracer``, its cost in those rounds, which are not in the headline): the
face's own work inside the span (kept out by construction: it should be none) and mm's task
steps and their CPU time, by task.

Run: ``python benchmarks/bench_triarb.py [--quick] [--updates N] [--rounds N] [--part P]
[--profile]``. ``--profile`` runs the BTC-USDT updates once more under cProfile and prints the
top functions by own time; ``--part evaluation`` or ``pipeline`` runs one half.

Fails: an exception from the code measured ends the run (a ``KeyError`` for a triangle whose
symbol has no instrument would be a bug in the generator here); nothing is retried. The
pipeline exits (``SystemExit``) when a round's triangle is not reported within 10 s or its
first leg was not written after the frame.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import math
import os
import pstats
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import h11
import orjson
import trio
import trio.testing
from loguru import logger

from mm import clock
from mm.config import Config, load_config, resolve_secrets
from mm.execution.auditor import OrderAuditor
from mm.execution.cancel_all import CancelAll
from mm.execution.legs import LegExecutor
from mm.execution.permissions import Grant, PermissionBoard, Source
from mm.execution.permissions import Level as Permitted
from mm.metrics import new_registry
from mm.model import Fill, Instrument, PriceLevel, Side
from mm.portfolio import Portfolio
from mm.strategies.base import StrategyContext
from mm.strategies.registry import build_strategy
from mm.strategies.runner import Trading
from mm.strategies.triarb.desk import TriangleDesk
from mm.strategies.triarb.legs import Triangle
from mm.strategies.triarb.reports import TriangleReport
from mm.strategies.triarb.signals import Evaluator, Signal
from mm.strategies.triarb.triangles import (
    BookView,
    Evaluation,
    Terms,
    affected,
    discover,
    evaluate,
    index,
)
from mm.venues.base import SpotTerms
from mm.venues.kucoin.connector import KucoinConnector
from mm.venues.kucoin.lane import CONNECTIONS, connect_to
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.kucoin.signing import Credentials
from mm.venues.service import VenueService
from mm.venues.sim.kucoin.quota import VIP0_QUOTAS, Quotas
from mm.venues.sim.kucoin.server import KucoinSimVenue
from mm.venues.sim.kucoin.triangle import TriangleConfig

QUOTES = {"USDT": 1.0, "USDC": 1.0, "BTC": 97_000.0, "ETH": 3_600.0, "KCS": 12.0}
# The odds that a base is quoted in each quote (every base has a USDT pair).
ODDS = {"USDT": 1.0, "BTC": 0.8, "USDC": 0.7, "ETH": 0.6, "KCS": 0.3}
CROSSES = (
    ("BTC", "USDT"),
    ("ETH", "USDT"),
    ("KCS", "USDT"),
    ("USDC", "USDT"),
    ("BTC", "USDC"),
    ("ETH", "USDC"),
    ("KCS", "USDC"),
    ("ETH", "BTC"),
    ("KCS", "BTC"),
    ("KCS", "ETH"),
)
PRIMARIES = ("USDT", "USDC", "BTC")
BUSY = "BTC-USDT"
FEE = Decimal("0.001")
START_VOLUME = Decimal(100)
MAX_BOOK_AGE_MS = 500
MIN_PROFIT_BPS = 5.0


def _pow10(exponent: int) -> Decimal:
    return Decimal(1).scaleb(exponent)


class Market:
    """The symbol graph, its instruments and books, and new books for a pair as it moves."""

    def __init__(self, seed: int, currencies: int, pairs: int, levels: int) -> None:
        self.random = random.Random(seed)
        self.levels = levels
        self.usd: dict[str, float] = dict(QUOTES)
        bases = [f"C{i:03d}" for i in range(max(1, currencies - len(QUOTES)))]
        for base in bases:
            self.usd[base] = 10 ** self.random.uniform(-4, 3)
        # Scale the odds so the pair count lands near the one asked for.
        wanted = max(0, pairs - len(CROSSES))
        scale = wanted / (len(bases) * sum(ODDS.values()))
        pairs_of: list[tuple[str, str]] = list(CROSSES)
        for base in bases:
            for quote, odds in ODDS.items():
                if quote == "USDT" or self.random.random() < min(1.0, odds * scale):
                    pairs_of.append((base, quote))
        self.instruments: dict[str, Instrument] = {}
        self.mids: dict[str, float] = {}
        for base, quote in pairs_of:
            symbol = f"{base}-{quote}"
            mid = self.usd[base] / self.usd[quote] * (1 + self.random.gauss(0.0, 5e-4))
            self.mids[symbol] = mid
            self.instruments[symbol] = self._instrument(symbol, base, quote, mid)
        self.funds_increments = {
            symbol: _pow10(math.floor(math.log10(1e-4 / self.usd[i.quote])))
            for symbol, i in self.instruments.items()
        }
        self.time_ms = 1_700_000_000_000
        self.books = {symbol: self.book(symbol) for symbol in self.instruments}

    def _instrument(self, symbol: str, base: str, quote: str, mid: float) -> Instrument:
        tick = _pow10(math.floor(math.log10(mid)) - 4)
        lot = _pow10(math.floor(math.log10(0.01 / self.usd[base])))
        min_size = _pow10(math.ceil(math.log10(0.1 / self.usd[base])))
        min_notional = float(_pow10(math.floor(math.log10(0.1 / self.usd[quote]))))
        min_size = max(min_size, lot)
        return Instrument("kucoin", symbol, base, quote, tick, lot, min_size, min_notional)

    def book(self, symbol: str) -> BookView:
        """A new book for ``symbol`` around its mid, moved by a random step."""
        instrument = self.instruments[symbol]
        self.mids[symbol] *= 1 + self.random.gauss(0.0, 1e-4)
        tick = instrument.price_increment
        lot = instrument.size_increment
        at = round(Decimal(repr(self.mids[symbol])) / tick)
        usd_of_base = self.usd[instrument.base]
        bids: list[PriceLevel] = []
        asks: list[PriceLevel] = []
        bid, ask = at - 1 - self.random.randrange(2), at + 1 + self.random.randrange(2)
        for _ in range(self.levels):
            for side, ticks in ((bids, bid), (asks, ask)):
                usd = self.random.uniform(50, 2_000)
                size = (Decimal(repr(usd / usd_of_base)) // lot) * lot
                side.append((float(ticks * tick), float(size), 1))
            bid -= 1 + self.random.randrange(5)
            ask += 1 + self.random.randrange(5)
        return BookView(tuple(bids), tuple(asks), self.time_ms)


def level2_message(symbol: str, view: BookView) -> bytes:
    """``view`` as KuCoin sends a depth snapshot: decimal strings, ``[price, size]`` levels."""
    data = {
        "asks": [[repr(px), repr(sz)] for px, sz, _ in view.asks],
        "bids": [[repr(px), repr(sz)] for px, sz, _ in view.bids],
        "timestamp": view.time_ms,
    }
    topic = f"/spotMarket/level2Depth50:{symbol}"
    return orjson.dumps({"type": "message", "topic": topic, "subject": "level2", "data": data})


def float_walk(triangles: Sequence[Triangle], books: dict[str, BookView]) -> float:
    """The baseline walk: each triangle's three books summed in floats to the start volume."""
    total = 0.0
    volume = float(START_VOLUME)
    for triangle in triangles:
        for leg in triangle.legs:
            view = books[leg.symbol]
            left = volume
            for px, sz, _ in view.asks if leg.side is Side.BUY else view.bids:
                cost = px * sz
                total += cost
                left -= cost
                if left <= 0:
                    break
    return total


def _copy(view: BookView) -> BookView:
    """The same book as a view never evaluated (as each update's view is when it arrives)."""
    return BookView(view.bids, view.asks, view.time_ms, view.continuous)


def timed(fn: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


class Run:
    """The market, its triangles and an evaluator holding every book, as the strategy holds
    them after its first snapshots."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.market = Market(args.seed, args.currencies, args.pairs, args.levels)
        self.terms = Terms(
            START_VOLUME, MAX_BOOK_AGE_MS, dict.fromkeys(self.market.instruments, FEE),
            self.market.funds_increments,
        )  # fmt: skip
        self.discovery_s = [self.discover() for _ in range(args.discoveries)]
        self.triangles = discover(self.market.instruments.values(), PRIMARIES)
        self.by_symbol = index(self.triangles)
        send, self.receive = trio.open_memory_channel[Signal](1)
        self.evaluator = Evaluator(
            self.triangles, self.market.instruments, self.terms, MIN_PROFIT_BPS, send,
            by_symbol=self.by_symbol,
        )  # fmt: skip
        for symbol, view in self.market.books.items():
            self.evaluator.on_book(symbol, view, self.market.time_ms)
        # Counted from here: the loading of the books above refuses triangles for books to come.
        self.evaluator.evaluations = self.evaluator.below_min_profit = 0
        self.evaluator.sent = self.evaluator.dropped = 0
        self.evaluator.refusals.clear()
        self._drain()
        self.symbols = sorted(self.market.instruments)

    def discover(self) -> float:
        started = time.perf_counter()
        index(discover(self.market.instruments.values(), PRIMARIES))
        return time.perf_counter() - started

    def update(self, symbol: str) -> tuple[float, float, float, int]:
        """One book update of ``symbol``: the evaluator's time, and the baselines' (orjson of
        its level-2 message, the float walk of its triangles), interleaved."""
        view = self.market.book(symbol)
        message = level2_message(symbol, view)
        triangles = affected(symbol, self.by_symbol)
        t_json = timed(orjson.loads, message)
        t_eval = timed(self.evaluator.on_book, symbol, view, self.market.time_ms)
        self.market.books[symbol] = view
        t_walk = timed(float_walk, triangles, self.market.books)
        self._drain()
        return t_eval, t_json, t_walk, len(triangles)

    def random_symbol(self) -> str:
        return self.market.random.choice(self.symbols)

    def _drain(self) -> None:
        with contextlib.suppress(trio.WouldBlock):
            self.receive.receive_nowait()


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def report_updates(name: str, rows: list[tuple[float, float, float, int]]) -> None:
    evals, jsons, walks, counts = (list(column) for column in zip(*rows, strict=True))
    p50, p99 = percentiles(evals)
    j50, _ = percentiles(jsons)
    w50, _ = percentiles(walks)
    rate = sum(counts) / sum(evals) if sum(evals) else 0.0
    print(f"  {name}: {len(rows)} updates, {statistics.median(counts):.0f} triangles (median)")
    print(f"    evaluator.on_book   p50 {p50 * 1e6:10.1f} us   p99 {p99 * 1e6:10.1f} us")
    print(f"    {rate:,.0f} evaluations/s ({1e6 / rate if rate else 0:.1f} us each)")
    print(f"    baseline orjson l2  p50 {j50 * 1e6:10.1f} us   on_book / it {p50 / j50:10.1f}x")
    print(f"    baseline float walk p50 {w50 * 1e6:10.1f} us   on_book / it {p50 / w50:10.1f}x")


# --- frame in -> first leg written: the service's pipeline on the embedded KuCoin face ----------

TRIARB_CONFIG = Path(__file__).resolve().parent.parent / "config.triarb.toml"
TRIGGER = "ETH-BTC"  # the pair the face dislocates: its frame is the one measured
DISLOCATION = 0.006  # 60 bps: the triangle through the pair clears 5 bps after 3 fees of 10
WIGGLE = 1e-4  # BTC-USDT and ETH-USDT move 1 bp back and forth at each restore: fresh books
LEG_REQUEST = b"POST /api/v1/hf/orders/sync "  # a leg: one IOC limit order
WIDE = 1_000_000  # a rate or quota no run can exhaust
ROUND_TIMEOUT_S = 10.0  # a triangle not reported by then: the pipeline is stuck
TRACE_EVERY = 5  # one round in this many runs under the tracer that times the face's work


class Written:
    """Which request was written to the client's sockets when: the leg's stamp. ``on_request``
    hears each (its request line, and when the kernel took its last byte), from
    ``StampedStream``; after ``arm`` the first leg is kept with the arrival stamp of the
    trigger's book as the bus held it at that moment (nothing yields between the two)."""

    def __init__(self, latest: Callable[[str], Any]) -> None:
        self._latest = latest
        self.armed_ns = 0
        self.leg: tuple[int, int] | None = None  # (frame received_ns, leg written_ns)
        self.requests = 0

    def arm(self) -> None:
        self.armed_ns = clock.monotonic_ns()
        self.leg = None

    def on_request(self, line: bytes, written_ns: int) -> None:
        self.requests += 1
        if self.armed_ns and self.leg is None and line.startswith(LEG_REQUEST):
            book = self._latest(TRIGGER)
            received = book.received_ns if book is not None else 0
            self.leg = (received, written_ns)


class StampedStream(trio.abc.Stream):
    """A connection of the client's order lane (``mm.venues.kucoin.lane``), Trio's TCP stream
    but for ``send_all``: the bytes go to the socket by ``os.write`` (a ``send`` with no flags)
    without yielding after it, and the time the kernel took the last byte is handed at once,
    with the request line, to ``on_request``. Trio's own ``send_all`` yields after its
    ``send``, which in one process would let the face read and answer the request before the
    stamp. Fails as Trio's stream does (``BrokenResourceError``)."""

    def __init__(self, inner: trio.SocketStream, on_request: Callable[..., None]):
        self._inner = inner
        self._socket = inner.socket
        self._on_request = on_request
        self._line: bytes | None = None  # a request's line that ``send_now`` wrote a part of

    def send_now(self, data: bytes) -> int:
        """The order lane's write with no yield, as on a plain socket (``os.write``): the
        bytes the kernel took (``BlockingIOError`` when none), the request stamped once they
        are all of it (else at the end of the ``send_all`` of the rest)."""
        sent = os.write(self._socket.fileno(), data)
        line = bytes(data[: data.find(b"\r\n", 0, 256)])
        if sent == len(data):
            self._on_request(line, clock.monotonic_ns())
        else:
            self._line = line
        return sent

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        view = memoryview(data)
        if not view:
            return
        line, self._line = self._line, None
        if line is None:
            line = bytes(view[: bytes(view[:256]).find(b"\r\n")])
        fd = self._socket.fileno()
        try:
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(self._socket)
        except OSError as error:
            raise trio.BrokenResourceError(str(error)) from error
        self._on_request(line, clock.monotonic_ns())

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self._inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._inner.aclose()


class StampedConnector(KucoinConnector):
    """KuCoin's connector whose REST transports (the trading client's among them) open their
    order lane's connections as ``StampedStream``s (the orders' requests: the reads stay on
    httpx, unstamped)."""

    def __init__(self, on_request: Callable[..., None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_request = on_request

    def _rest(self, url: str, *, orders: bool) -> KucoinRestTransport:
        connect, _ = connect_to(url)

        async def stamped() -> trio.abc.Stream:
            stream = await connect()
            assert isinstance(stream, trio.SocketStream)  # the face is plain http
            return StampedStream(stream, self._on_request)

        return KucoinRestTransport(
            url,
            self.credentials,
            budget=self.rate_budget,
            now_ms=self._now_ms,
            deadline_s=self._rest_deadline_s,
            connect=stamped,
            lane_connections=CONNECTIONS if orders else 0,
        )


class StepTracer(trio.abc.Instrument):
    """While ``tracing``, every task step as (start, end, this thread's CPU time in it,
    whether the face's), times on the monotonic clock in nanoseconds: how much of a span was
    the face's work, how much mm's tasks' (in CPU: what other processes on the machine do not
    inflate), and (the rest) neither: waiting for the kernel or for a CPU. The face's tasks
    are the one running it (``root``) and every task below it: its server, connections,
    WebSocket sessions."""

    def __init__(self) -> None:
        self.root: trio.lowlevel.Task | None = None
        self.tracing = False
        self.steps: list[tuple[int, int, int, bool, str]] = []
        self._started = self._cpu = 0
        self._face = False

    def _is_face(self, task: trio.lowlevel.Task) -> bool:
        current: trio.lowlevel.Task | None = task
        while current is not None:
            if current is self.root:
                return True
            nursery = current.parent_nursery
            current = None if nursery is None else nursery.parent_task
        return False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.tracing:
            self._face = self._is_face(task)
            self._cpu = time.thread_time_ns()
            self._started = clock.monotonic_ns()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._started:
            cpu = time.thread_time_ns() - self._cpu
            self.steps.append((self._started, clock.monotonic_ns(), cpu, self._face, task.name))
            self._started = 0

    def within(self, start_ns: int, end_ns: int, *, face: bool) -> tuple[int, int]:
        """Nanoseconds of the face's (or mm's) steps between ``start_ns`` and ``end_ns``, and
        their CPU time (a step cut by the bounds counted in proportion)."""
        wall = cpu = 0
        for a, b, used, of_face, _ in self.steps:
            inside = min(b, end_ns) - max(a, start_ns)
            if of_face is face and inside > 0:
                wall += inside
                cpu += used * inside // max(1, b - a)
        return wall, cpu

    def by_task(self, start_ns: int, end_ns: int) -> Counter[str]:
        """CPU nanoseconds between ``start_ns`` and ``end_ns`` by task name."""
        found: Counter[str] = Counter()
        for a, b, used, _, name in self.steps:
            inside = min(b, end_ns) - max(a, start_ns)
            if inside > 0:
                found[name] += used * inside // max(1, b - a)
        return found


class BareHttp:
    """The baseline: a kept-alive connection to the face, ``GET /api/v1/timestamp`` written on
    it and its answer read, through h11 alone (no pool, no signing, no budget). A connection
    the face closes (hypercorn's 1,000 requests a connection) is opened again, untimed."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._stream: trio.SocketStream | None = None
        self._h11 = h11.Connection(h11.CLIENT)

    async def round_trip(self) -> int:
        """Nanoseconds from the request's write to its answer's last byte. A connection the
        face closed while it was idle (its keep-alive timeout, on a loaded machine) shows as
        closed before any byte of the answer: the request is written again on a new one."""
        for _ in range(2):
            timed = await self._round_trip()
            if timed is not None:
                return timed
            self._stream, self._h11 = None, h11.Connection(h11.CLIENT)
        raise RuntimeError("the face closed the baseline's connection twice before answering")

    async def _round_trip(self) -> int | None:
        h11c = self._h11
        if h11c.our_state is h11.DONE and h11c.their_state is h11.DONE:
            h11c.start_next_cycle()
        if self._stream is None or h11c.our_state is not h11.IDLE:
            if self._stream is not None:
                await self._stream.aclose()
            self._stream = await trio.open_tcp_stream(self._host, self._port)
            h11c = self._h11 = h11.Connection(h11.CLIENT)
        stream = self._stream
        request = h11.Request(method="GET", target="/api/v1/timestamp", headers=[("Host", "mm")])
        data = (h11c.send(request) or b"") + (h11c.send(h11.EndOfMessage()) or b"")
        started = clock.monotonic_ns()
        answered = False
        try:
            await stream.send_all(data)
            while True:
                event = h11c.next_event()
                if event is h11.NEED_DATA:
                    h11c.receive_data(await stream.receive_some(65_536))
                elif isinstance(event, h11.EndOfMessage):
                    return clock.monotonic_ns() - started
                elif isinstance(event, h11.ConnectionClosed):
                    raise RuntimeError("the face closed the baseline's connection mid-answer")
                else:
                    answered = True
        except (h11.RemoteProtocolError, trio.BrokenResourceError):
            if answered:
                raise
            await stream.aclose()
            return None


def pipeline_config() -> Config:
    """``config.triarb.toml`` (its triangles on the face's three pairs, primary USDT, the
    shipped evaluation terms and slots) with only the throttles tuned for real time opened:
    the triangles a minute, and the pre-trade order rate and duplicate window."""
    shipped = load_config(TRIARB_CONFIG, {})
    limits = attrs.evolve(shipped.triarb.limits, max_triangles_per_minute=WIDE)
    return attrs.evolve(
        shipped,
        triarb=attrs.evolve(shipped.triarb, limits=limits),
        pretrade=attrs.evolve(
            shipped.pretrade, orders_per_second=WIDE, burst=WIDE, duplicate_window_s=0.0
        ),
    )


def requote(face: KucoinSimVenue) -> None:
    """The face's provider quotes again around the market's mids, as its market loop does."""
    for placed in face.market.quote(face.exchange, face.now_ns()):
        face.rest.changes.extend(placed.changes)


def publish_level2(face: KucoinSimVenue, symbol: str) -> bool:
    """The face's level-2 increment of ``symbol`` alone (``publish`` would send its ticker
    after it, whose sending and reading would fall in the span: it goes with the next
    ``publish``); False when the book did not change."""
    data = face.depth.step(symbol, face.exchange.books[symbol], face.now_ns() // 1_000_000)
    if data is None:
        return False
    message = {
        "topic": f"/market/level2:{symbol}",
        "type": "message",
        "subject": "trade.l2update",
        "data": data,
    }
    face.hub.push(("level2", symbol), "level2", orjson.dumps(message).decode())
    return True


@attrs.define
class PipelineFigures:
    span: list[float] = attrs.field(factory=list)  # frame received -> leg written, seconds
    traced_span: list[float] = attrs.field(factory=list)  # the same, rounds under the tracer
    face_in_span: list[float] = attrs.field(factory=list)  # the face's steps in those spans
    mm_in_span: list[float] = attrs.field(factory=list)  # mm's task steps in those spans
    mm_cpu_in_span: list[float] = attrs.field(factory=list)  # their CPU time
    by_task: Counter[str] = attrs.field(factory=Counter)  # CPU ns in traced spans, by task
    to_slot: list[float] = attrs.field(factory=list)  # frame received -> triangle started
    to_fired: list[float] = attrs.field(factory=list)  # -> the slot fired leg 1
    to_written: list[float] = attrs.field(factory=list)  # -> its request written
    baseline: list[float] = attrs.field(factory=list)  # bare HTTP round trips
    outcomes: Counter[str] = attrs.field(factory=Counter)
    requests: int = 0
    signals: int = 0
    dropped: int = 0


async def settle() -> None:
    """Until every task is blocked: the frames, orders and reports of a round all handled."""
    await trio.testing.wait_all_tasks_blocked(cushion=0.0002)


async def quiet(desk: TriangleDesk) -> None:
    """Until no triangle is in flight and every task is blocked (a signal waiting in the desk's
    channel would have been taken by an idle slot): the round's later triangles, made while
    the dislocation held, have run to their end before the face is restored."""
    with trio.fail_after(ROUND_TIMEOUT_S):
        while True:
            await settle()
            if not desk.claims.busy():
                return
            await trio.sleep(0.001)


async def run_pipeline(rounds: int, warmup: int) -> PipelineFigures:
    """The service's triarb pipeline against the face, one triangle per round (see main)."""
    figures = PipelineFigures()
    config = pipeline_config()
    secrets = resolve_secrets(config, {})
    api = secrets.venue_api
    assert api is not None  # the development credentials, for the embedded face
    registry = new_registry("bench")
    permissions = PermissionBoard()
    stopping = permissions.slot(Source.SERVICE)
    face = KucoinSimVenue(
        step_s=3_600.0,  # its market loop never steps: the rounds move the market
        # Three levels a side (of 2,000 USDT: a triangle of 100 takes from the first): the
        # provider's requotes, three a round, are most of the face's work.
        market=TriangleConfig(levels=3, takers_per_minute=0.0, shocks_per_minute=0.0),
    )
    face.quotas = Quotas(dict.fromkeys(VIP0_QUOTAS, WIDE))
    written = Written(lambda symbol: adapter.bus.latest(symbol))
    connector = StampedConnector(
        written.on_request,
        credentials=Credentials(api.key, api.secret, api.passphrase, api.version),
        symbols=config.feeds.coins,
        rest_deadline_s=config.feeds.user.rest_deadline_s,
        access_recheck_s=config.feeds.startup.access_recheck_s,
    )

    def on_fill(fill: Fill) -> None:
        if portfolio.apply(fill):
            trading.on_fill(fill)

    adapter = VenueService(
        connector,
        config.feeds,
        venue_url=lambda: face.url or None,
        registry=registry,
        killed=lambda: False,
        on_fill=on_fill,
        on_order_events=lambda events: None,
        on_feed_state=lambda feed, state: None,
        on_startup=lambda account: portfolio.adopt_venue_positions(account),
        cancel_foreign_orders=config.venue.cancel_foreign_orders,
    )

    def instrument(symbol: str) -> Instrument:
        assert adapter.client is not None
        return adapter.client.instrument(symbol)

    def spot() -> SpotTerms | None:
        client = adapter.client
        return client if isinstance(client, SpotTerms) else None

    portfolio = Portfolio(config.strategy.symbols, instrument)
    context = StrategyContext(
        permissions=permissions,
        portfolio=portfolio,
        instruments=instrument,
        live_orders=lambda symbol: len(adapter.dispatcher.registry.live(symbol)),
        registry=registry,
        spot=spot,
    )
    reported = [trio.Event()]
    first: list[TriangleReport] = []

    def record(row: dict[str, Any]) -> None:  # the journal's place: the report is in
        if not first:
            first.append(desk.recent[-1])
        reported[0].set()

    desk = TriangleDesk(
        config.triarb,
        config.strategy.symbols,
        context,
        lambda: adapter.router,
        adapter.dispatcher,
        record,
    )
    trading = Trading(
        build_strategy(config.strategy, context, config.triarb),
        config.executor,
        adapter,
        registry,
        permissions,
        CancelAll(lambda: adapter.client),
        config.pretrade,
        portfolio=portfolio,
        legs=LegExecutor(lambda: adapter.router, adapter.dispatcher, instrument),
        dispatcher=adapter.dispatcher,
        router=lambda: adapter.router,
        triangles=desk,
    )
    tracer = StepTracer()

    async def run_face(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        tracer.root = trio.lowlevel.current_task()
        await face.run(task_status=task_status)

    async def journal(kind: str, data: dict[str, object]) -> None:
        return None

    async with trio.open_nursery() as nursery:
        url = await nursery.start(run_face)
        await nursery.start(adapter.run_user)
        await nursery.start(
            adapter.run_execution, journal, OrderAuditor(config.executor.audit, registry)
        )
        await nursery.start(trading.run_strategy)
        await nursery.start(adapter.run_market)
        for _, run in trading.children():
            await nursery.start(run)
        with trio.fail_after(ROUND_TIMEOUT_S * 3):
            for symbol in config.strategy.symbols:
                await adapter.bus.wait_newer(symbol, 0)
            assert adapter.user_stream is not None
            await adapter.user_stream.synced.wait()
        host, port = url.removeprefix("http://").rsplit(":", 1)
        bare = BareHttp(host, int(port))
        market = face.market
        for n in range(warmup + rounds):
            sign = 1 if n % 2 else -1  # the two triangles of the pairs in turn
            # Restore: no dislocation, and BTC-USDT and ETH-USDT moved a little, so that all
            # three books are fresh. The dislocated pair's increment goes first: a book of
            # another pair evaluated while the dislocation is still on the bus would signal
            # the triangle again.
            market.dislocation = 0.0
            market.btc_usdt *= 1 + sign * WIGGLE
            market.eth_usdt *= 1 - sign * WIGGLE
            requote(face)
            publish_level2(face, TRIGGER)
            face.publish()
            await settle()
            baseline = await bare.round_trip()
            await settle()
            # The trigger: one frame, the dislocated pair's increment.
            traced = n % TRACE_EVERY == TRACE_EVERY - 1
            if traced:
                tracer.steps.clear()
                tracer.tracing = True
                trio.lowlevel.add_instrument(tracer)
            reported[0] = trio.Event()
            first.clear()
            written.arm()
            market.dislocation = sign * DISLOCATION
            requote(face)
            if not publish_level2(face, TRIGGER):
                raise RuntimeError(f"the dislocation did not move {TRIGGER}'s book")
            try:
                with trio.fail_after(ROUND_TIMEOUT_S):
                    await reported[0].wait()
            except trio.TooSlowError:
                decisions = dict(trading.strategy.decisions())
                raise SystemExit(f"round {n}: no triangle reported; {decisions}") from None
            finally:
                if traced:
                    tracer.tracing = False
                    trio.lowlevel.remove_instrument(tracer)
            await settle()
            await quiet(desk)
            leg = written.leg
            if leg is None or leg[0] < written.armed_ns:
                raise SystemExit(f"round {n}: a triangle, but no leg stamped after the frame")
            if n < warmup:
                continue
            received, sent = leg
            span = (sent - received) / 1e9
            if traced:
                figures.traced_span.append(span)
                figures.face_in_span.append(tracer.within(received, sent, face=True)[0] / 1e9)
                busy, cpu = tracer.within(received, sent, face=False)
                figures.mm_in_span.append(busy / 1e9)
                figures.mm_cpu_in_span.append(cpu / 1e9)
                figures.by_task.update(tracer.by_task(received, sent))
                continue
            figures.span.append(span)
            figures.baseline.append(baseline / 1e9)
            report = first[0]
            took, fired = report.signal_ns, report.legs[0].times.fired_ns
            figures.to_slot.append((took - received) / 1e9)
            figures.to_fired.append((fired - took) / 1e9)
            figures.to_written.append((sent - fired) / 1e9)
        figures.outcomes.update({o.value: n for o, n in desk.outcomes.items()})
        figures.requests = written.requests
        figures.signals, figures.dropped = desk.queued, desk.dropped
        stopping.set(Grant(Permitted.HALTED, "the benchmark is done"))
        await trading.stop()
        nursery.cancel_scope.cancel()
    return figures


def report_pipeline(figures: PipelineFigures, warmup: int) -> None:
    span, base = figures.span, figures.baseline
    print(
        f"frame in -> first leg written, the service's pipeline on the embedded KuCoin face: "
        f"{len(span)} triangles ({warmup} warm-up rounds and every {TRACE_EVERY}th round, "
        f"traced, apart)"
    )
    print("  (level-2 frame read by the market WebSocket (Book.received_ns) -> level-2 book ->")
    print("   feed -> bus -> triarb on_book, decide -> desk: for a waiting slot, in the same task:")
    print("   claim, limits, cascade -> RouterVenue: pre-trade -> order router ->")
    print("   KucoinClient.send_place -> signed REST -> order lane -> the leg's last byte taken")
    print("   by the kernel; the slot's task then awaits the answer)")
    rows = [
        ("baseline: bare HTTP round trip to the face", base),
        ("frame in -> leg 1 written", span),
    ]
    for label, values in rows:
        p50, p99 = statistics.median(values) * 1e6, percentile(values, 0.99) * 1e6
        print(f"  {label:<44} p50 {p50:8.1f} us  p99 {p99:8.1f} us")
    s50, s99 = statistics.median(span), percentile(span, 0.99)
    ratio = s50 / statistics.median(base)
    print(
        f"  span / round trip p50 {ratio:.2f}x; target p50 < 300 us "
        f"({'met' if s50 < 300e-6 else 'NOT met'}), p99 < 1000 us "
        f"({'met' if s99 < 1e-3 else 'NOT met'})"
    )
    parts = [
        ("frame received -> its triangle started", figures.to_slot),
        ("triangle started -> leg 1 fired", figures.to_fired),
        ("leg 1 fired -> its request written", figures.to_written),
    ]
    print("  of which (each part's own percentiles):")
    for label, values in parts:
        p50, p99 = statistics.median(values) * 1e6, percentile(values, 0.99) * 1e6
        print(f"    {label:<42} p50 {p50:8.1f} us  p99 {p99:8.1f} us")
    if figures.traced_span:
        traced, face, busy = figures.traced_span, figures.face_in_span, figures.mm_in_span
        print(
            f"  traced rounds ({len(traced)}, the tracer's cost in them): span p50 "
            f"{statistics.median(traced) * 1e6:.1f} us, of which mm's task steps p50 "
            f"{statistics.median(busy) * 1e6:.1f} us (the rest: waiting for the kernel or a CPU),"
        )
        cpu = figures.mm_cpu_in_span
        print(
            f"    their CPU time p50 {statistics.median(cpu) * 1e6:.1f} us, "
            f"p99 {percentile(cpu, 0.99) * 1e6:.1f} us; by task (mean a span):"
        )
        for name, ns in figures.by_task.most_common(8):
            parts = name.split(".")  # the module's path dropped: from the class on
            at = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts) - 2)
            print(f"      {ns / len(traced) / 1e3:8.1f} us  {'.'.join(parts[at:])}")
        print(
            f"    the face's own work inside the span p50 {statistics.median(face) * 1e6:.1f} us,"
            f" p99 {percentile(face, 0.99) * 1e6:.1f} us, in {sum(1 for f in face if f > 0)} of "
            f"{len(face)} spans"
        )
    outcomes = ", ".join(f"{name} {n}" for name, n in sorted(figures.outcomes.items()))
    print(
        f"  triangles: {outcomes}; signals queued {figures.signals}, dropped {figures.dropped};"
        f" requests written {figures.requests}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000)
    parser.add_argument("--currencies", type=int, default=300)
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--updates", type=int, default=100, help="book updates of each kind")
    parser.add_argument("--single", type=int, default=2_000, help="one-triangle evaluations")
    parser.add_argument("--discoveries", type=int, default=5)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--rounds", type=int, default=3_000, help="triangles through the service")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured triangles first")
    parser.add_argument("--part", choices=("all", "evaluation", "pipeline"), default="all")
    parser.add_argument("--quick", action="store_true", help="a tiny market: that it runs")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.currencies, args.levels = 60, 25, 5
        args.updates, args.single, args.discoveries = 10, 20, 1
        args.rounds, args.warmup = 6, 2
    if args.part in ("all", "evaluation"):
        evaluation(args)
    if args.part in ("all", "pipeline"):
        logger.remove()  # the components' INFO lines would interleave with the figures
        logger.add(sys.stderr, level=os.environ.get("BENCH_LOG", "WARNING"))
        load = os.getloadavg()[0]
        figures = trio.run(run_pipeline, args.rounds, args.warmup)
        report_pipeline(figures, args.warmup)
        print(
            f"  load average (1 min): {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
        )


def evaluation(args: argparse.Namespace) -> None:
    """The evaluation's figures (see the module): discovery, one triangle, book updates."""
    run = Run(args)
    market = run.market
    currencies = {c for i in market.instruments.values() for c in (i.base, i.quote)}
    counts = sorted(len(found) for found in run.by_symbol.values())
    print(
        f"triarb evaluation: {len(market.instruments)} pairs over {len(currencies)} currencies, "
        f"{args.levels} levels a side, primaries {', '.join(PRIMARIES)}"
    )
    d50 = statistics.median(run.discovery_s)
    print(f"  discovery + index: {d50 * 1e3:.1f} ms (median of {len(run.discovery_s)})")
    per_primary = {p: sum(t.primary == p for t in run.triangles) for p in PRIMARIES}
    print(
        f"  triangles: {len(run.triangles)} ("
        + ", ".join(f"{p} {n}" for p, n in per_primary.items())
        + f"); {BUSY} is in {len(affected(BUSY, run.by_symbol))}; a pair in a triangle is in"
        f" {statistics.median(counts):.0f} (median), {counts[-1] if counts else 0} (most)"
    )

    through = affected(BUSY, run.by_symbol)
    one = next((t for t in through if t.primary == "USDT"), through[0])
    result = evaluate(one, market.books, market.instruments, run.terms, market.time_ms)
    outcome = (
        f"{result.profit_bps:+.1f} bps on {result.volume}"
        if isinstance(result, Evaluation)
        else f"refused: {result.reason.value}"
    )
    colds, warms, walks = [], [], []
    now = market.time_ms
    for _ in range(args.single):
        fresh = {symbol: _copy(market.books[symbol]) for symbol in one.symbols}
        colds.append(timed(evaluate, one, fresh, market.instruments, run.terms, now))
        warms.append(timed(evaluate, one, fresh, market.instruments, run.terms, now))
        walks.append(timed(float_walk, (one,), fresh))
    c50, c99 = percentiles(colds)
    h50, h99 = percentiles(warms)
    w50, _ = percentiles(walks)
    print(f"  one triangle ({one.name}, {outcome}), {args.single} evaluations:")
    print(f"    evaluate, new books p50 {c50 * 1e6:10.1f} us   p99 {c99 * 1e6:10.1f} us")
    print(f"    again, same books   p50 {h50 * 1e6:10.1f} us   p99 {h99 * 1e6:10.1f} us")
    print(f"    baseline float walk p50 {w50 * 1e6:10.1f} us   evaluate / it {c50 / w50:8.1f}x")

    busy = [run.update(BUSY) for _ in range(args.updates)]
    report_updates(f"book update of {BUSY}", busy)
    drawn = [run.update(run.random_symbol()) for _ in range(args.updates)]
    report_updates("book update of a pair drawn at random", drawn)
    evaluator = run.evaluator
    refusals = ", ".join(f"{r.value} {n}" for r, n in evaluator.refusals.most_common())
    print(
        f"  evaluator: {evaluator.evaluations} evaluations, {evaluator.below_min_profit} below"
        f" the minimum profit, {evaluator.sent} signals sent, {evaluator.dropped} dropped;"
        f" refusals: {refusals or 'none'}"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.updates):
            run.update(BUSY)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
