"""User frames: which stack frame is the user's line, wherever a stage needs one.

A frame is the user's unless it lies in torch, in cnnlint, in the standard library (a loop stopped
by --timeout is often inside it) or in generated code. Other packages' code counts as the user's:
torchvision's files are where a torchvision model is written. Loading asks where a layer was
built and where an exception was raised; tracing asks which line created each node, as text in
the ``File "p", line n, in f`` form of fx stack traces; the graph stage reads that text back.

Torch-free: torch's folder is found without importing it.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import os
import re
import sysconfig
import traceback
import types
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


# fx node meta key: the SourceLocation (with its column) of the user line that made the node.
CALL_SITE = "cnnlint_call_site"


def innermost_user_location(frame: types.FrameType | None) -> SourceLocation | None:
    """The first user frame from ``frame`` outwards, with the column of the call it is making
    (``F.relu(x)``, ``x * w``, ``out += y``), from Python 3.11's instruction positions."""
    while frame is not None:
        if not is_library_frame(frame.f_code.co_filename):
            return frame_location(frame)
        frame = frame.f_back
    return None


def record_call_site(meta: dict, frame: types.FrameType | None) -> None:
    """Note on an fx node's ``meta`` the user line that created it: ``stack_trace`` in the
    ``File "p", line n, in f`` form of fx stack traces, and :data:`CALL_SITE` with the column."""
    site = innermost_user_location(frame)
    if site is None:
        meta.setdefault("stack_trace", "")
        return
    meta.setdefault("stack_trace", f'  File "{site.path}", line {site.line}, in {site.function}\n')
    meta.setdefault(CALL_SITE, site)


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
