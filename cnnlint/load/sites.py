"""Construction sites: where each layer was built.

While a model is built, every ``nn.Module.__init__`` notes where it was called from: the innermost
frame outside torch and outside the constructor chain of the module itself. That is the line a
user edits to change the layer, and the line every finding points at.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

from torch import nn

from cnnlint.core import SourceLocation
from cnnlint.frames import ShownSites, frame_location, is_library_frame, is_package_file, pick_site

_MAX_FRAMES = 64
# cnnlint's own folder: a frame in it is the loader calling the model's code (the chain's end).
_CNNLINT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")

Chain = list[SourceLocation]  # construction frames, innermost first


@contextlib.contextmanager
def record_construction_sites() -> Iterator[dict[int, tuple[nn.Module, Chain]]]:
    """Patch ``nn.Module.__init__`` to note where each module is created.

    Yields a dict ``id(module) -> (module, chain)``: the module is kept so its id stays unique;
    the chain is every frame from the constructor call out to the code cnnlint called (the
    factory, or the module imported), innermost first, without torch's, the standard library's
    and the module's own ``__init__`` frames. :func:`cnnlint.frames.pick_site` picks the line a finding shows.
    """
    sites: dict[int, tuple[nn.Module, Chain]] = {}
    original_init = nn.Module.__init__
    # one location per call site (with the file: code objects from two files can compare equal)
    where: dict[tuple[str, types.CodeType, int], SourceLocation] = {}

    def recording_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        if id(self) not in sites:
            chain: Chain = []
            frame = sys._getframe(1)
            own = True  # still in the module's own constructor chain (its super().__init__ lines)
            for _ in range(_MAX_FRAMES):
                if frame is None:
                    break
                code = frame.f_code
                if code.co_filename.startswith(_CNNLINT_DIR):
                    break  # the loader's own call: the chain ends at the model's code
                # Skip library code, and the module's own constructor chain. The own chain is
                # innermost: once a user frame's ``self`` is another object, no outer one is
                # this module, and ``f_locals`` (a copy of every local) need not be read again.
                # A library frame is skipped either way, so its locals are never read.
                if not is_library_frame(code.co_filename):
                    if own and code.co_argcount and code.co_varnames[0] == "self":
                        own = frame.f_locals.get("self") is self
                        if own:
                            frame = frame.f_back
                            continue
                    key = (code.co_filename, code, frame.f_lasti)
                    site = where.get(key)
                    if site is None:
                        site = where[key] = frame_location(frame)
                    chain.append(site)
                frame = frame.f_back
            if chain:
                sites[id(self)] = (self, chain)
        original_init(self, *args, **kwargs)

    nn.Module.__init__ = recording_init  # type: ignore[method-assign]
    try:
        yield sites
    finally:
        nn.Module.__init__ = original_init  # type: ignore[method-assign]


def library_model_dir(obj: Any) -> str | None:
    """The directory of the file that defines ``obj`` (a factory, class or module) when that file
    is in an installed package; None for the user's own code."""
    target = type(obj) if isinstance(obj, nn.Module) else obj
    try:
        filename = inspect.getsourcefile(target) or inspect.getfile(target)
    except (TypeError, OSError):
        return None
    if not filename or not is_package_file(filename):
        return None
    return os.path.join(os.path.dirname(os.path.abspath(filename)), "")


def sites_by_path(
    module: nn.Module, sites: dict[int, tuple[nn.Module, Chain]], model_dir: str | None
) -> tuple[dict[str, SourceLocation], dict[str, Chain]]:
    """Each submodule's edit site and construction chain (outermost first), by module path."""
    by_path: dict[str, SourceLocation] = {}
    chains: dict[str, Chain] = {}
    show = ShownSites()  # chains share their outer sites

    for path, sub in module.named_modules():
        entry = sites.get(id(sub))
        if entry is not None and entry[0] is sub:
            chain = entry[1]
            by_path[path] = show(pick_site(chain, model_dir))
            chains[path] = [show(site) for site in reversed(chain)]
    return by_path, chains
