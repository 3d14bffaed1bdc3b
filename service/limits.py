"""Admission control: at most ``limit`` generations at once; the next one is told to come back later (429).

A generation holds its slot from admission until its last byte is sent or its client goes away, so
the limit bounds CPU, GPU and memory use rather than request arrival. Refusing at once (instead of
queueing) keeps latency honest and lets a load balancer send the request to another replica.
"""

from __future__ import annotations

import threading


class Lease:
    """One held slot; releasing twice is harmless, so every exit path may release it."""

    def __init__(self, slots: Slots) -> None:
        self._slots: Slots | None = slots

    def release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots._release()


class Slots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def try_acquire(self) -> Lease | None:
        """A lease, or ``None`` when all slots are taken."""
        with self._lock:
            if self._used >= self.limit:
                return None
            self._used += 1
        return Lease(self)

    def _release(self) -> None:
        with self._lock:
            self._used -= 1
