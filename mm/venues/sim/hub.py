"""Who is subscribed to what on the simulator's WebSocket, and fan-out of messages to them.

Pure bookkeeping plus a non-blocking send: each session owns a bounded outbox; a session
whose outbox is full is a slow consumer and is closed (as the venue drops clients that do not
keep up) rather than slowing the venue down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson
import trio

Key = tuple[str, str]  # (channel, coin or user; "" when neither)


class Session:
    """One WebSocket client: its subscriptions and outbox."""

    def __init__(self, conn_id: object, outbox_size: int) -> None:
        self.conn_id = conn_id
        self.keys: set[Key] = set()
        # (channel, frame, trio time queued): faults delay a frame from when it was queued.
        self.send_channel, self.receive_channel = trio.open_memory_channel[tuple[str, str, float]](
            outbox_size
        )
        self.closed = trio.Event()
        self.close_reason = ""

    def push(self, text: str, channel: str = "") -> bool:
        """Queue a frame; False (and the session closed) when the client is not keeping up."""
        if self.closed.is_set():
            return False
        try:
            self.send_channel.send_nowait((channel, text, trio.current_time()))
        except trio.WouldBlock:
            self.close("slow consumer")
            return False
        return True

    def close(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()


class Hub:
    def __init__(self) -> None:
        self._subscribers: dict[Key, set[Session]] = {}

    def add(self, session: Session, key: Key) -> bool:
        """Subscribe; False when the session already had it."""
        if key in session.keys:
            return False
        session.keys.add(key)
        self._subscribers.setdefault(key, set()).add(session)
        return True

    def remove(self, session: Session, key: Key) -> bool:
        if key not in session.keys:
            return False
        session.keys.discard(key)
        subscribers = self._subscribers.get(key)
        if subscribers is not None:
            subscribers.discard(session)
            if not subscribers:
                del self._subscribers[key]
        return True

    def drop(self, session: Session) -> None:
        for key in list(session.keys):
            self.remove(session, key)

    def has(self, key: Key) -> bool:
        return key in self._subscribers

    def keys(self) -> Iterable[Key]:
        return list(self._subscribers)

    def publish(self, key: Key, channel: str, data: object) -> int:
        """Send ``{"channel", "data"}`` to every subscriber of ``key``; how many got it."""
        subscribers = self._subscribers.get(key)
        if not subscribers:
            return 0
        text = orjson.dumps({"channel": channel, "data": data}).decode()
        return sum(session.push(text, channel) for session in list(subscribers))

    def push(self, key: Key, channel: str, text: str) -> int:
        """Send a message already in its wire form to every subscriber of ``key`` (a face
        whose messages are not ``{"channel", "data"}``); how many got it."""
        subscribers = self._subscribers.get(key)
        if not subscribers:
            return 0
        return sum(session.push(text, channel) for session in list(subscribers))

    def publish_lazy(self, key: Key, channel: str, data: Callable[[], object]) -> int:
        """Like ``publish``, building the payload only when someone listens."""
        if key not in self._subscribers:
            return 0
        return self.publish(key, channel, data())
