"""Watching user code: a per-model time limit and a hook that says which model is running.

Every stage that runs user code (importing the file, building a model, tracing it) does so inside
``Watch.guard(name)``. In-process, the limit is a SIGALRM that raises :class:`ModelTimeout` in the
user's loop, so the error can name the line it was stuck on. In a worker process the same guard
also tells the parent which model is running, so that a model that hangs in native code, exits
the process or crashes it can be named and the rest of the run goes on (see ``cnnlint.workers``).
Torch-free, like the rest of the plumbing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass


class ModelTimeout(BaseException):
    """Raised inside user code when its time is up.

    A BaseException, like KeyboardInterrupt, so that ``except Exception`` in user code or in a
    build fallback does not swallow it.
    """

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(f"{name}: did not finish within {seconds:g} s")
        self.name, self.seconds = name, seconds


@contextlib.contextmanager
def deadline(name: str, seconds: float | None) -> Iterator[None]:
    """Raise ModelTimeout in this (main) thread after ``seconds``; no limit when None or 0."""
    usable = (
        seconds
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise ModelTimeout(name, seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Running:
    """What a guarded piece of user code is: a file being imported (no model of it is known yet),
    or one model being built, traced or checked."""

    name: str  # the model, or the file being imported
    importing: bool = False


@dataclass
class Watch:
    """How a run watches user code: its time limit, and who to tell what is running."""

    timeout: float | None = None
    on_begin: Callable[[Running], None] | None = None

    def guard(self, name: str, importing: bool = False) -> contextlib.AbstractContextManager[None]:
        if self.on_begin is not None:
            self.on_begin(Running(name, importing))
        return deadline(name, self.timeout)
