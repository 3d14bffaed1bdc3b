"""Noticing a client that leaves before its response has started.

Starlette notices a disconnect only while it sends a body. Before that, a weighted request sums its
weights (about a million muons a second on CPU: minutes for a large n) and a ROOT response is built
whole; a client leaving then would hold its generation slot and the cores until the first byte failed.
The work runs in a worker thread with a stop event that a watcher on the connection sets.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request

T = TypeVar("T")
_POLL_S = 0.1


async def unless_client_leaves(request: Request, work: Callable[[threading.Event], T]) -> T:
    """``work(stop)`` in a worker thread; ``stop`` is set within ``_POLL_S`` of the client disconnecting.

    Only for a request whose body has been read: polling the connection consumes what it receives.
    """
    stop = threading.Event()

    async def watch() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(_POLL_S)
        stop.set()

    watcher = asyncio.create_task(watch())
    try:
        return await run_in_threadpool(work, stop)
    finally:
        watcher.cancel()
