"""Admission control on its own: slots, the first-come-first-served line, time-outs and clients leaving the line."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from service.http.limits import Lease, Slots


async def _until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """Let the loop run until ``condition()`` holds (waiters need a few loop turns to join the line)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.001)


async def _one_slot_held() -> tuple[Slots, Lease]:
    slots = Slots(1)
    holder = await slots.acquire(0)
    assert holder is not None
    return slots, holder


async def _joins_line(slots: Slots, request: Coroutine[Any, Any, Lease | None]) -> asyncio.Task[Lease | None]:
    """``request`` (an acquire) as a task, once it stands in line behind those already there."""
    before = slots.waiting
    task = asyncio.create_task(request)
    await _until(lambda: slots.waiting == before + 1)
    return task


def test_free_slots_are_granted_at_once_and_a_full_server_refuses_without_patience() -> None:
    async def scenario() -> None:
        slots = Slots(2)
        first, second = await slots.acquire(0), await slots.acquire(0)
        assert isinstance(first, Lease) and isinstance(second, Lease) and slots.used == 2
        assert await slots.acquire(0) is None
        first.release()
        first.release()  # harmless
        assert slots.used == 1
        assert await slots.acquire(0) is not None

    asyncio.run(scenario())


def test_a_freed_slot_goes_to_the_longest_waiter_never_to_a_newcomer() -> None:
    async def scenario() -> None:
        slots, holder = await _one_slot_held()
        order: list[str] = []

        async def wait(name: str) -> Lease | None:
            lease = await slots.acquire(5)
            order.append(name)
            return lease

        early = await _joins_line(slots, wait("early"))
        late = await _joins_line(slots, wait("late"))
        holder.release()
        assert await slots.acquire(0) is None, "a newcomer took the slot from the line"
        early_lease = await early
        assert early_lease is not None and order == ["early"] and slots.used == 1
        early_lease.release()
        late_lease = await late
        assert late_lease is not None and order == ["early", "late"]
        late_lease.release()
        assert slots.used == 0 and slots.waiting == 0

    asyncio.run(scenario())


def test_patience_runs_out_and_the_waiter_leaves_the_line() -> None:
    async def scenario() -> None:
        slots, holder = await _one_slot_held()
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await slots.acquire(0.2) is None
        assert 0.19 <= loop.time() - began < 1.0
        assert slots.waiting == 0 and slots.used == 1
        holder.release()
        assert slots.used == 0

    asyncio.run(scenario())


def test_a_waiter_cancelled_in_line_holds_nothing_even_when_the_slot_reaches_it_at_that_moment() -> None:
    async def scenario() -> None:
        slots, holder = await _one_slot_held()
        gone = await _joins_line(slots, slots.acquire(5))
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert slots.waiting == 0 and slots.used == 1
        # Now the race: the slot is handed over, then the waiter is cancelled before it wakes.
        racing = await _joins_line(slots, slots.acquire(5))
        holder.release()  # hands the slot to `racing`; its wake-up is only scheduled
        racing.cancel()
        await asyncio.gather(racing, return_exceptions=True)
        assert slots.used == 0 and slots.waiting == 0, "a cancelled waiter kept its slot"

    asyncio.run(scenario())


def test_slots_released_from_other_threads_wake_waiters_on_the_loop() -> None:
    async def scenario() -> None:
        slots, holder = await _one_slot_held()
        waiter = await _joins_line(slots, slots.acquire(5))
        threading.Thread(target=holder.release).start()
        lease = await asyncio.wait_for(waiter, 2)
        assert lease is not None and slots.used == 1

    asyncio.run(scenario())
