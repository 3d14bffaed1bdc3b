"""A command stopped by SIGINT or SIGTERM stops as a user expects: promptly, in one line, leaving no partial file.

Python turns SIGINT into ``KeyboardInterrupt`` (a traceback of the frames it cut through, unless caught) and
leaves SIGTERM to its default action, which ends the process at once: no ``finally`` runs, so a file being
written under a temporary name stays behind (74 MB of ``.part`` measured). Inside :func:`stop_on_signals`
both raise :class:`Stopped` in the main thread instead, so whatever writes a file unwinds as it does for
any error (:func:`service.samples.sinks.open_sink` removes its partial file), and the command says which
signal stopped it and exits with 128 + its number, the status a shell gives a process the signal killed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """A signal asked the command to stop. A ``BaseException``, like ``KeyboardInterrupt``, so that no
    ``except Exception`` on the way out mistakes it for a failure of the work and carries on."""

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum)
        super().__init__(f"stopped by {self.signal.name}")

    @property
    def exit_status(self) -> int:
        return 128 + int(self.signal)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Raise :class:`Stopped` on SIGINT or SIGTERM while the block runs; the handlers before are restored after.

    A signal the process was started ignoring (SIGINT of a background job in a script, ``nohup``) stays
    ignored. Once one has arrived, further ones are ignored until the block is left, so that a second
    Ctrl-C cannot cut short the removal of the partial file. Outside the main thread (Python delivers
    signals only there) the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _: FrameType | None) -> None:
        for each in SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        raise Stopped(signum)

    previous = {each: signal.getsignal(each) for each in SIGNALS}
    for each, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(each, stop)
    try:
        yield
    finally:
        for each, handler in previous.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be set back
                signal.signal(each, handler)
