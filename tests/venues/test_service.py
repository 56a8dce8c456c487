"""The generic venue service runs any venue's connector (issue 15): a connector of the test's
own, in memory and known only through the port (``mm.venues.base.VenueConnector``), gets the
feed children, the access check's client, the startup sequence, the dead-man's keeper and the
routing of its user events, as Hyperliquid's does. What a second venue writes is a connector:
nothing here names one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio
from prometheus_client import CollectorRegistry

from mm.connection import ConnectionConfig, ConnectionHealth, State, Transition
from mm.execution.audit import AuditConfig
from mm.execution.auditor import OrderAuditor
from mm.model import (
    AccountState,
    CancelOrder,
    CancelResult,
    Fill,
    Instrument,
    ModifyOrder,
    OpenOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    RateLimitState,
)
from mm.venues.base import (
    AccountBudget,
    DeadMansSwitch,
    OrderCapabilities,
    RateLimitWaits,
    UnknownInstrument,
    VenueClient,
    VenueConnector,
)
from mm.venues.config import FeedsConfig
from mm.venues.service import VenueService
from tests.execution.test_startup import PortBudget
from tests.feeds.test_history import fill
from tests.feeds.test_market import FakeMarket
from tests.feeds.test_user import ACCOUNT, OPEN, FakeUserStream

URL = "http://venue.test"
COINS = ("BTC", "ETH")


class FakeConnection:
    """A connection that is up, as the feeds' metrics read it."""

    def __init__(self) -> None:
        self.state = State.HEALTHY
        self.health = ConnectionHealth(state=State.HEALTHY)
        self.frames_received = {"book": 2}
        self.malformed_frames = 0


class FakeSwitch:
    """The venue's dead-man's switch: records every time it is armed."""

    def __init__(self) -> None:
        self.armed: list[int | None] = []

    async def schedule_cancel(self, at_ms: int | None) -> None:
        await trio.lowlevel.checkpoint()
        self.armed.append(at_ms)

    async def traded_volume(self) -> float:
        return 0.0


class FakeClient:
    """The port's request side with no venue behind it: it lists no open orders, every read
    answers, every cancel is done."""

    capabilities = OrderCapabilities(
        modify=False,
        max_batch=5,
        post_only=True,
        ioc=True,
        market_by_quote=False,
        test_orders=False,
    )
    fills_page = 100

    def __init__(self, name: str, switch: DeadMansSwitch | None = None) -> None:
        self.name = name
        self.switch = switch
        self.calls: list[str] = []
        self.canceled: list[CancelOrder] = []

    @property
    def dead_mans_switch(self) -> DeadMansSwitch | None:
        return self.switch

    def new_client_id(self) -> str:
        return "mm-1"

    def is_own_client_id(self, client_id: str | None) -> bool:
        return client_id is not None and client_id.startswith("mm-")

    async def _call(self, what: str) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append(what)

    async def open_orders(self) -> list[OpenOrder]:
        await self._call("open_orders")
        return []

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        await self._call("order_status")
        return None

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        raise AssertionError("nothing is placed here")

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        await self._call("cancel")
        self.canceled.extend(cancels)
        return [None for _ in cancels]

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
        raise AssertionError("nothing is modified here")

    async def instruments(self) -> list[Instrument]:
        await self._call("instruments")
        return []

    def instrument(self, symbol: str) -> Instrument:
        raise UnknownInstrument(symbol)

    async def account_state(self) -> AccountState:
        await self._call("account_state")
        return ACCOUNT

    async def fills_since(self, time_ms: int) -> list[Fill]:
        await self._call("fills_since")
        return []

    async def rate_limit(self) -> RateLimitState:
        await self._call("rate_limit")
        return RateLimitState(0.0, 0, 10_000)


@attrs.frozen
class FakeMarketSession:
    stream: FakeMarket
    connection: FakeConnection


@attrs.define
class FakeUserSession:
    stream: FakeUserStream
    unchecked: FakeClient
    trading: FakeClient
    connection: FakeConnection
    landing_window_ms: int = 3_500
    steps: list[str] = attrs.field(factory=list)

    async def trading_client(self, waits: RateLimitWaits) -> VenueClient:
        async def allowed() -> bool:
            return True

        assert await waits.call("venue_access", allowed)
        self.steps.append("access")
        return self.trading


class FakeBudget:
    """An account budget that records what it is told."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.resyncs = 0
        self.running = False

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def resynced(self, started_at: float) -> None:
        self.resyncs += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        task_status.started()
        await trio.sleep_forever()

    def status(self) -> dict[str, object]:
        return {"fills": len(self.fills)}


class FakeConnector:
    """A venue's connector in memory: the sessions it hands back are the test's."""

    account = "acct-1"

    def __init__(self) -> None:
        self.limiter = PortBudget()
        self.budget = FakeBudget()
        self.switch = FakeSwitch()
        self.market = FakeMarketSession(FakeMarket(), FakeConnection())
        self.user = FakeUserSession(
            FakeUserStream(),
            FakeClient("unchecked"),
            FakeClient("trading", self.switch),
            FakeConnection(),
        )
        self.opened: list[tuple[str, str, ConnectionConfig]] = []

    @property
    def account_budget(self) -> AccountBudget | None:
        return self.budget

    def rate_limit_waits(self) -> int:
        return 0

    def access_refused(self) -> str | None:
        return None

    def status(self) -> dict[str, Any]:
        return {"venue_access": {"allowed": True}}

    async def run_market(
        self,
        url: str,
        config: ConnectionConfig,
        on_state: Callable[[Transition], None],
        *,
        task_status: trio.TaskStatus[FakeMarketSession] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self.opened.append(("market", url, config))
        task_status.started(self.market)
        await trio.sleep_forever()

    async def run_user(
        self,
        url: str,
        config: ConnectionConfig,
        on_state: Callable[[Transition], None],
        waits: RateLimitWaits,
        *,
        task_status: trio.TaskStatus[FakeUserSession] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self.opened.append(("user", url, config))
        task_status.started(self.user)
        await trio.sleep_forever()


def client_of(service: VenueService) -> VenueClient | None:
    return service.client  # read afresh (mypy would keep a narrowed property)


def typed(connector: FakeConnector) -> VenueConnector:
    return connector  # mypy checks that the fake is the port's connector


async def test_a_connector_of_its_own_runs_under_the_generic_service(
    autojump_clock: trio.abc.Clock,
) -> None:
    connector = FakeConnector()
    registry = CollectorRegistry()
    fills: list[Fill] = []
    adopted: list[AccountState] = []
    journal: list[tuple[str, dict[str, Any]]] = []
    feeds = FeedsConfig(coins=COINS)
    service = VenueService(
        typed(connector),
        feeds,
        venue_url=lambda: URL,
        registry=registry,
        killed=lambda: False,
        on_fill=fills.append,
        on_order_events=lambda events: None,
        on_feed_state=lambda feed, state: None,
        on_startup=adopted.append,
    )

    async def record(kind: str, data: dict[str, Any]) -> None:
        journal.append((kind, data))

    assert client_of(service) is None  # until the user feed is up
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run_market)
        await nursery.start(service.run_user)
        await nursery.start(service.run_execution, record, OrderAuditor(AuditConfig(), registry))
        # The connections were opened at the venue's URL, the user one quiet when nothing trades.
        assert [(feed, url) for feed, url, _ in connector.opened] == [
            ("market", URL),
            ("user", URL),
        ]
        assert connector.opened[1][2].stale_readings_to_reconnect == 0
        # The unchecked client read the instruments; the access check's client is the one traded
        # with.
        assert connector.user.unchecked.calls == ["instruments"]
        assert connector.user.steps == ["access"]
        assert service.client is connector.user.trading
        assert service.router is not None
        assert service.router.landing_window_ms == connector.user.landing_window_ms
        # The startup sequence ran on that client, and the account was adopted before any fill.
        assert connector.user.trading.calls[:4] == [
            "instruments",
            "open_orders",
            "account_state",
            "rate_limit",
        ]
        assert service.startup is not None
        assert adopted == [ACCOUNT]
        assert journal[0][0] == "startup"
        assert connector.budget.running
        assert service.market_connection() == ("healthy", 0)
        with trio.fail_after(30):
            while not service.in_sync():  # noqa: ASYNC110 - the user feed's gate
                await trio.sleep(0.1)
        # A fill on the venue's stream is journaled, credited to its account budget, published.
        new = fill(tid=501, time_ms=60_000)
        connector.user.stream.push("fills", new)
        with trio.fail_after(5):
            while not fills:  # noqa: ASYNC110 - the fill channel
                await trio.sleep(0.01)
        assert fills == [new]
        assert connector.budget.fills == [new]
        assert [kind for kind, _ in journal].count("fill") == 1
        assert service.dispatcher.stats.untracked_fills == 1
        # The user feed's resync listed an order nobody placed through this mm: its snapshot
        # reached the order auditor, which canceled the orphan on the traded client.
        with trio.fail_after(30):
            while not connector.user.trading.canceled:  # noqa: ASYNC110 - the auditor's period
                await trio.sleep(0.1)
        assert [c.oid for c in connector.user.trading.canceled] == [OPEN.oid]
        assert connector.budget.resyncs == 1
        # The venue's own part of the status beside the generic one.
        status = service.status()
        assert status["venue_access"] == {"allowed": True}
        assert status["api_headroom"] == {"overall": 1.0}
        assert status["startup"]["waiting"] is None
        nursery.cancel_scope.cancel()


async def test_the_dead_mans_switch_is_the_traded_clients(
    autojump_clock: trio.abc.Clock,
) -> None:
    connector = FakeConnector()
    service = VenueService(
        typed(connector),
        FeedsConfig(coins=COINS),
        venue_url=lambda: URL,
        registry=CollectorRegistry(),
        killed=lambda: False,
        on_fill=lambda fill: None,
        on_order_events=lambda events: None,
        on_feed_state=lambda feed, state: None,
        on_startup=lambda account: None,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run_user)
        await service.schedule_cancel(123_000)
        await service.schedule_cancel(None)
        nursery.cancel_scope.cancel()
    assert connector.switch.armed == [123_000, None]
    assert connector.user.unchecked.switch is None  # the unchecked client never arms it
