"""A model spec, parsed once: what to lint, as a command line, a directory or a config key says.

    path/model.py          every model the file defines (see cnnlint.load for which)
    path/model.py::Name    one class or zero-argument function from that file
    package.module:attr    an import path: a class, a factory function or a module instance
    path/to/folder         every .py file in it that git would not ignore (see cnnlint.discover)
    path/model.onnx        an exported model, read as it is (see cnnlint.graph.onnx)

Every other module asks a ModelSpec, never the text. Torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from cnnlint.errors import LoadError
from cnnlint.paths import display_path

USAGE = "Use path/model.py, path/model.py::Name, package.module:attr or path/model.onnx."


@dataclass(frozen=True)
class ModelSpec:
    """One thing to lint: a file (every model in it, or one by name) or an import path."""

    text: str  # as written on the command line, found in a directory, or a config key
    display: str  # the name in reports: "examples/m.py::Net", "examples/m.py", "pkg.mod:attr"
    path: Path | None = None  # the source file (or folder), for file specs
    module: str | None = None  # "package.module", for import specs
    attr: str | None = None  # class or function name; None: every model the file defines
    from_directory: bool = False  # found in a directory: a file that defines no model is no error
    error: str | None = None  # why the text is not a spec: reported as this spec's error result

    @classmethod
    def parse_or_error(cls, text: str) -> ModelSpec:
        """Like :meth:`parse`, but a malformed spec becomes a spec that carries its error, so that
        one bad argument is one error result and the other specs are still linted."""
        try:
            return cls.parse(text)
        except LoadError as exc:
            return cls(text, text, error=str(exc))

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        if "::" in text:
            file_part, _, attr = text.partition("::")
            if not attr:
                raise LoadError(f"{text}: nothing after '::'; write path/model.py::ClassName.")
            return cls(text, f"{display_path(file_part)}::{attr}", path=Path(file_part), attr=attr)
        if text.endswith(".onnx"):
            return cls(text, display_path(text), path=Path(text))
        if text.endswith(".py") or os.sep in text or "/" in text or Path(text).is_dir():
            return cls(text, display_path(text), path=Path(text))
        if ":" in text:
            module, _, attr = text.partition(":")
            if not module or not attr:
                raise LoadError(f"{text}: an import spec looks like package.module:attr.")
            return cls(text, text, module=module, attr=attr)
        raise LoadError(f"{text}: not a model spec. {USAGE}")

    @property
    def names_many_models(self) -> bool:
        """A file whose models are discovered; the other forms name one model each."""
        return self.path is not None and self.attr is None and not self.is_onnx

    @property
    def is_onnx(self) -> bool:
        """An exported ONNX model: read by cnnlint.graph.onnx, not imported."""
        return self.path is not None and self.path.suffix == ".onnx"

    def member(self, name: str) -> ModelSpec:
        """The spec of one model found in this file."""
        assert self.path is not None and self.attr is None
        text, display = f"{self.text}::{name}", f"{self.display}::{name}"
        return replace(self, text=text, display=display, attr=name)

    @classmethod
    def found_file(cls, path: Path) -> ModelSpec:
        """The spec of a file found in a directory given as a spec."""
        return cls(display_path(path), display_path(path), path=path, from_directory=True)
