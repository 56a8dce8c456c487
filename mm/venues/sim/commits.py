"""The simulator's commit queue: an accepted action takes effect a block or two after it arrived.

The venue does not act on an action when its API server takes it in: the action goes into a
block, and only once that block is committed (about two blocks, 0.2-0.5 s, on Hyperliquid) does
it take effect and is it answered. ``CommitQueue`` plays that part. Every accepted action gets a
commit time, a seeded random delay drawn from ``[sim] commit_delay_min_ms..commit_delay_max_ms``
after it arrived, never earlier than the action received before it (blocks are sequential, so
actions take effect in the order received). Until then the action is nowhere in the venue's
state: ``orderStatus`` answers ``unknownOid`` for its order and ``openOrders`` does not list it;
the checks the venue makes when it executes the action (the expiry, the nonce, the address
limit) are made then, by the commit itself. Once it has taken effect, whoever gave the action is
told the answer (``done``). A client that went away meanwhile (its socket dropped, its HTTP
request abandoned) changes nothing: the action takes effect all the same, unanswered.

``commit_due`` is the pure step (a test of the request checks commits with it, clock-free);
``run`` is the venue's task that calls it on Trio's clock.

How it fails: an action whose commit raises is a bug of the simulator. Its error goes to its
``done`` (an HTTP request fails with a 500, a WebSocket post gets an error response), and the
actions queued behind it still commit: one bad action never wedges the venue.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import outcome
import trio

Answer = Any
Commit = Callable[[], Answer]
Done = Callable[[outcome.Outcome[Answer]], None]


@attrs.frozen
class Accepted:
    """An action the API server took in, to take effect when its block is committed:
    ``commit()`` carries it out and returns the venue's answer."""

    commit: Commit


@attrs.define
class _Queued:
    due: float  # Trio time
    commit: Commit
    done: Done


class CommitQueue:
    """Accepted actions in the order received, each committed at its time (see the module)."""

    def __init__(self, delay_ms: tuple[float, float], seed: int) -> None:
        low, high = delay_ms
        if not 0 <= low <= high:
            raise ValueError(f"commit delay must be 0 <= low <= high ms, got {delay_ms}")
        self.delay_ms = (low, high)
        # Its own random source: the delays never change the market's tape or the faults.
        self._rng = random.Random(f"{seed}/commits")
        self._queue: deque[_Queued] = deque()
        self._last_due = -math.inf
        self._arrived = trio.Event()
        self.committed = 0

    def __len__(self) -> int:
        """Actions accepted and not committed yet."""
        return len(self._queue)

    def accept(self, commit: Commit, done: Done, now: float) -> float:
        """Queue an action received at ``now`` (Trio time); returns the time it commits."""
        low, high = self.delay_ms
        due = max(now + self._rng.uniform(low, high) / 1000, self._last_due)
        self._last_due = due
        self._queue.append(_Queued(due, commit, done))
        self._arrived.set()
        return due

    def commit_due(self, now: float) -> int:
        """Commit, in the order received, every action whose time has come; how many."""
        count = 0
        while self._queue and self._queue[0].due <= now:
            queued = self._queue.popleft()
            result = outcome.capture(queued.commit)
            self.committed += 1
            count += 1
            queued.done(result)
        return count

    async def submit(self, commit: Commit) -> Answer:
        """Queue an action received now and return its answer once it has taken effect. If
        the caller is cancelled first, the action still takes effect (unanswered)."""
        finished = trio.Event()
        results: list[outcome.Outcome[Answer]] = []

        def done(result: outcome.Outcome[Answer]) -> None:
            results.append(result)
            finished.set()

        self.accept(commit, done, trio.current_time())
        await finished.wait()
        return results[0].unwrap()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit each queued action at its time, forever."""
        task_status.started()
        while True:
            if not self._queue:
                self._arrived = trio.Event()
                await self._arrived.wait()
                continue
            await trio.sleep_until(self._queue[0].due)
            self.commit_due(trio.current_time())
