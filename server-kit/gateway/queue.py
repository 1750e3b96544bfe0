"""Admission to the upstream: strict priority between classes, deficit round robin between users.

At most ``max_inflight`` requests are with the upstreams at once. When all slots are taken a request
waits in its class's queue; a freed slot goes to the most urgent non-empty class, and inside a class to
the next user in deficit-round-robin order (each waiting user is credited ``quantum`` tokens per round
and spends a request's estimated token cost; at most one request per visit), so a user with a flood
of requests gets the same share as one with a single request. Full queues and long waits are refused
with :class:`Rejected` (429/503 and Retry-After) rather than left to hang.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, field

from codeassist.serverkit.gateway.record import Reason, Rejected

__all__ = ["Rejected", "Scheduler"]


@dataclass(eq=False)
class _Waiter:
    user: str
    cost: int
    fut: asyncio.Future[None] = field(repr=False)
    granted: bool = False


class Scheduler:
    def __init__(
        self,
        n_classes: int,
        max_inflight: int,
        max_queue: int,
        max_queue_per_user: int,
        quantum: int = 1024,
        timeout_s: float = 10.0,
    ) -> None:
        self.max_inflight, self.max_queue, self.max_queue_per_user = max_inflight, max_queue, max_queue_per_user
        self.quantum, self.timeout_s = quantum, timeout_s
        self.inflight = 0
        self.queued = 0
        self.queued_by_user: Counter[str] = Counter()
        self._queues: list[dict[str, deque[_Waiter]]] = [{} for _ in range(n_classes)]
        self._order: list[deque[str]] = [deque() for _ in range(n_classes)]
        self._deficit: list[Counter[str]] = [Counter() for _ in range(n_classes)]

    def depth(self, rank: int) -> int:
        return sum(len(d) for d in self._queues[rank].values())

    def retry_after(self) -> int:
        return 1 + self.queued // max(1, self.max_inflight)

    async def acquire(self, user: str, rank: int, cost: int) -> None:
        """Wait for a slot; raises :class:`Rejected` when the queue is full or the wait too long."""
        if self.queued == 0 and self.inflight < self.max_inflight:
            self.inflight += 1
            return
        if self.queued >= self.max_queue:
            raise Rejected(503, "gateway queue full", Reason.QUEUE_FULL, self.retry_after())
        if self.queued_by_user[user] >= self.max_queue_per_user:
            raise Rejected(429, "too many queued requests for this user", Reason.QUEUE_FULL, self.retry_after())
        w = _Waiter(user, max(1, min(cost, 16 * self.quantum)), asyncio.get_running_loop().create_future())
        q = self._queues[rank]
        if user not in q:
            q[user] = deque()
            self._order[rank].append(user)
        q[user].append(w)
        self.queued += 1
        self.queued_by_user[user] += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                await w.fut
        except TimeoutError:
            if w.granted:
                self.release()
            else:
                self._remove(rank, w)
            raise Rejected(503, "queued too long", Reason.QUEUE_TIMEOUT, self.retry_after()) from None
        except asyncio.CancelledError:  # the client went away while waiting
            if w.granted:
                self.release()
            else:
                self._remove(rank, w)
            raise

    def release(self) -> None:
        self.inflight -= 1
        self._dispatch()

    # -- internals ---------------------------------------------------------------------------
    def _forget(self, rank: int, w: _Waiter) -> None:
        self.queued -= 1
        self.queued_by_user[w.user] -= 1
        if self.queued_by_user[w.user] <= 0:
            del self.queued_by_user[w.user]
        q = self._queues[rank]
        if not q[w.user]:
            del q[w.user]
            self._order[rank].remove(w.user)
            self._deficit[rank].pop(w.user, None)

    def _remove(self, rank: int, w: _Waiter) -> None:
        dq = self._queues[rank].get(w.user)
        if dq is not None and w in dq:
            dq.remove(w)
            self._forget(rank, w)

    def _next(self) -> tuple[int, _Waiter] | None:
        for rank, order in enumerate(self._order):
            if not order:
                continue
            q, deficit = self._queues[rank], self._deficit[rank]
            while True:
                user = order[0]
                head = q[user][0]
                if deficit[user] >= head.cost:  # at most one request per visit, then the next user
                    deficit[user] -= head.cost
                    q[user].popleft()
                    order.rotate(-1)
                    self._forget(rank, head)
                    return rank, head
                deficit[user] += self.quantum
                order.rotate(-1)
        return None

    def _dispatch(self) -> None:
        while self.inflight < self.max_inflight and self.queued:
            nxt = self._next()
            if nxt is None:
                return
            _, w = nxt
            if w.fut.done():  # cancelled in the meantime
                continue
            w.granted = True
            w.fut.set_result(None)
            self.inflight += 1
