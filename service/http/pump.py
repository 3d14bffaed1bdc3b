"""Run a blocking producer in its own thread and consume it from asyncio, with backpressure and a stop switch.

The producer (inference and encoding) must not run on the event loop, and must not run ahead of a slow
client by more than ``depth`` items, or memory would grow with the response. A semaphore bounds the
items in flight; the consumer side is a plain ``asyncio.Queue`` so waiting on it is cancellable. When
the consumer stops (end of stream, client gone, cancellation), the stop event tells the producer to
quit after its current item.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_POLL_S = 0.1


class _Done:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def pump(
    produce: Callable[[threading.Event], Iterator[T]], depth: int, stop: threading.Event
) -> AsyncGenerator[T]:
    """Items of ``produce(stop)``, made in a worker thread, at most ``depth`` ahead of the consumer."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[T | _Done] = asyncio.Queue()
    room = threading.Semaphore(depth)

    def hand_over(item: T | _Done) -> None:
        try:
            loop.call_soon_threadsafe(items.put_nowait, item)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            stop.set()

    def run() -> None:
        try:
            for item in produce(stop):
                while not room.acquire(timeout=_POLL_S):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                hand_over(item)
            hand_over(_Done())
        except BaseException as error:  # handed to the consumer, which raises it in its own context
            hand_over(_Done(error))

    thread = threading.Thread(target=run, name="muongan-pump", daemon=True)
    thread.start()
    try:
        while True:
            item = await items.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            room.release()
            yield item
    finally:
        stop.set()
