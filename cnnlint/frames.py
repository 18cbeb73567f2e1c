"""User frames: which stack frame is the user's line, wherever a stage needs one.

A frame is the user's unless it lies in torch, in cnnlint, in the standard library (a loop stopped
by --timeout is often inside it) or in generated code. Other packages' code counts as the user's:
torchvision's files are where a torchvision model is written. Loading asks where a layer was
built and where an exception was raised; tracing asks which line created each node, as text in
the ``File "p", line n, in f`` form of fx stack traces; the graph stage reads that text back.

Torch-free: torch's folder is found without importing it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
import os
import re
import sys
import sysconfig
import traceback
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

from cnnlint.core import SourceLocation
from cnnlint.paths import display_path


def _torch_dir() -> str:
    spec = importlib.util.find_spec("torch")  # finds the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return os.path.join(locations[0], "") if locations else os.path.join(os.sep, "<no torch>", "")


_LIBRARY_DIRS = (_torch_dir(), os.path.dirname(os.path.abspath(__file__)) + os.sep, "<")
_STDLIB_DIR = sysconfig.get_paths()["stdlib"] + os.sep
_PACKAGE_DIRS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)
_STACK_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


@functools.cache  # asked for every frame of every module constructor and traced call
def is_library_frame(filename: str) -> bool:
    """Frames that are never the user's line (see the module docstring)."""
    if filename.startswith(_LIBRARY_DIRS):
        return True
    return filename.startswith(_STDLIB_DIR) and not any(d in filename for d in _PACKAGE_DIRS)


@functools.cache
def is_package_file(filename: str) -> bool:
    """Whether ``filename`` lies in an installed package (site-packages, dist-packages)."""
    return any(d in filename for d in _PACKAGE_DIRS)


def frame_location(frame: types.FrameType) -> SourceLocation:
    """Where ``frame`` is now: file, line, the column of the call it is making, function."""
    code = frame.f_code
    column = 1
    positions = getattr(code, "co_positions", None)
    if positions is not None and frame.f_lasti >= 0:
        try:
            # islice, not list(): a constructor's code object can have thousands of positions.
            pos = next(itertools.islice(positions(), frame.f_lasti // 2, None))
            if pos[2] is not None:
                column = pos[2] + 1
        except StopIteration:  # pragma: no cover - defensive
            pass
    return SourceLocation(code.co_filename, frame.f_lineno, column, code.co_name)


# fx node meta keys: the SourceLocation (with its column) of the innermost user line that made the
# node, and every user frame of that call, innermost first (the model's forward, the block's,
# the helper's ...), from which :func:`pick_site` chooses the line a finding shows.
CALL_SITE = "cnnlint_call_site"
CALL_CHAIN = "cnnlint_call_chain"

_MAX_FRAMES = 64
_stops: list[types.FrameType] = []  # the frames that started the traces now running, innermost last
# One location per call site. Code objects compare equal across files when their code is the
# same (their file is not compared), so the file is part of the key.
_where: dict[tuple[str, types.CodeType, int], SourceLocation] = {}


@contextlib.contextmanager
def call_chains_end_here() -> Iterator[None]:
    """Inside, a recorded call chain ends at the frame that entered the ``with`` (the trace
    stage's entry): the frames outside it are cnnlint's and its caller's, not the model's."""
    _stops.append(sys._getframe(2))  # 0: this generator, 1: contextlib's __enter__
    try:
        yield
    finally:
        _stops.pop()
        if len(_where) > 200_000:  # a sweep over thousands of models: do not keep every code object
            _where.clear()


def _cached_location(frame: types.FrameType) -> SourceLocation:
    key = (frame.f_code.co_filename, frame.f_code, frame.f_lasti)
    site = _where.get(key)
    if site is None:
        site = _where[key] = frame_location(frame)
    return site


def call_chain(frame: types.FrameType | None) -> tuple[SourceLocation, ...]:
    """The user frames from ``frame`` outwards, innermost first, each with the column of the call
    it is making (``F.relu(x)``, ``x * w``, ``out += y``, from Python 3.11's instruction
    positions), up to the frame that started the trace."""
    stop = _stops[-1] if _stops else None
    chain: list[SourceLocation] = []
    for _ in range(_MAX_FRAMES):
        if frame is None or frame is stop:
            break
        if not is_library_frame(frame.f_code.co_filename):
            chain.append(_cached_location(frame))
        frame = frame.f_back
    return tuple(chain)


def pick_site(chain: Sequence[SourceLocation], model_dir: str | None) -> SourceLocation:
    """The line a user edits, from a chain of user frames (innermost first): one policy for the
    line that built a layer and the line that called an op.

    A model that is itself library code (``torchvision.models:mobilenet_v2``): the innermost
    frame in the model's own package directory (``torchvision/models/mobilenetv2.py``, not the
    ``torchvision/ops/misc.py`` helper every conv goes through). The user's own model: the
    innermost frame outside installed packages (their wrapper's line, not the library's). Else
    the innermost frame.
    """
    if model_dir is not None:
        preferred = (site for site in chain if site.path.startswith(model_dir))
    else:
        preferred = (site for site in chain if not is_package_file(site.path))
    return next(preferred, chain[0])


class ShownSites:
    """Recorded sites as a report shows them (the path relative to the working directory), each
    made once: the loader and the tracer share one location object per call site, and every
    layer of a block repeats the same outer frames. Found by identity; each entry keeps its site
    alive, so an id is never reused while the entry stands. One instance per model (the working
    directory may change between models)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[SourceLocation, SourceLocation]] = {}

    def __call__(self, site: SourceLocation) -> SourceLocation:
        entry = self._by_id.get(id(site))
        if entry is None or entry[0] is not site:
            entry = self._by_id[id(site)] = (
                site, SourceLocation(display_path(site.path), site.line, site.column, site.function)
            )
        return entry[1]


def record_call_site(meta: dict, frame: types.FrameType | None) -> None:
    """Note on an fx node's ``meta`` the user lines that created it: ``stack_trace`` in the
    ``File "p", line n, in f`` form of fx stack traces, :data:`CALL_SITE` (the innermost, with
    its column) and :data:`CALL_CHAIN` (all of them, innermost first)."""
    chain = call_chain(frame)
    if not chain:
        meta.setdefault("stack_trace", "")
        return
    site = chain[0]
    meta.setdefault("stack_trace", f'  File "{site.path}", line {site.line}, in {site.function}\n')
    meta.setdefault(CALL_SITE, site)
    meta.setdefault(CALL_CHAIN, chain)


def user_frame(stack_trace: str) -> tuple[str, int, str] | None:
    """(path, line, function) of the innermost user frame of an fx stack trace: the line in the
    model's code."""
    frames = _STACK_FRAME.findall(stack_trace or "")
    for path, line, function in reversed(frames):
        if not is_library_frame(path):
            return path, int(line), function
    return None


def where_raised(exc: BaseException, path: Path | None = None) -> str:
    """' (at file:line)' for the innermost traceback frame in ``path``, else in user code."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame_summary in reversed(frames):
        if path is not None and os.path.abspath(frame_summary.filename) == str(path.resolve()):
            return f" (at {display_path(frame_summary.filename)}:{frame_summary.lineno})"
    for frame_summary in reversed(frames):
        if not is_library_frame(frame_summary.filename):
            return f" (at {display_path(frame_summary.filename)}:{frame_summary.lineno})"
    return ""
