"""What a run is told on the command line (:class:`RunOptions`), and the rules by which it
overrides ``[tool.cnnlint]``, in one place for the pipeline's resolved settings and for the
cache's key. Torch-free and pydantic-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnnlint.core import INPUT_DTYPES, Shape
from cnnlint.errors import ConfigError

DEFAULT_TARGET = "generic"
DEFAULT_FAIL_ON = "warning"


@dataclass
class RunOptions:
    """Command-line choices; None means "take it from [tool.cnnlint], then the default"."""

    targets: list[str] = field(default_factory=list)
    precision: str | None = None
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    input_shapes: list[Shape] | None = None
    input_dtypes: list[str] | None = None  # one per input, or one for all (cnnlint.core.INPUT_DTYPES)
    extend_select: list[str] = field(default_factory=list)
    fail_on: str | None = None
    debug: bool = False
    timeout: float | None = None  # seconds per model (import, build, trace and check)
    skip_files_without_models: bool = False  # as for files found in a directory
    real_run_max_params: int | None = None  # see cnnlint.trace.REAL_RUN_MAX_PARAMS
    keep_stages: bool = False  # results keep their graph and cost (ModelResult.stages), in process



def targets_for(options: RunOptions, configured: str | None, root: Path) -> tuple[list[str], Path | None]:
    """The targets a spec is linted for, and the folder a profile path among them is relative
    to: one named in pyproject.toml is found relative to it; one on the command line is not."""
    if options.targets:
        return list(options.targets), None
    return [configured or DEFAULT_TARGET], root


def fail_on_for(options: RunOptions, configured: str | None) -> str:
    return options.fail_on or configured or DEFAULT_FAIL_ON


def parse_input_shape(text: str, source: str = "--input-shape") -> list[Shape]:
    """``1,3,224,224`` or several shapes separated by ``;``: ``1,3,224,224;1,16``."""
    shapes = []
    for part in text.split(";"):
        dims = [d.strip() for d in part.split(",")]
        try:
            shape = tuple(int(d) for d in dims)
        except ValueError:
            raise ConfigError(
                f"{source} {text!r}: dimensions must be integers, e.g. 1,3,224,224."
            ) from None
        if not shape or any(d <= 0 for d in shape):
            raise ConfigError(f"{source} {text!r}: dimensions must be positive, e.g. 1,3,224,224.")
        shapes.append(shape)
    return shapes


def parse_input_dtype(text: str, source: str = "--input-dtype") -> list[str]:
    """``int64`` for every input, or one per input separated by ``,``: ``float32,int64``."""
    names = [name.strip() for name in text.split(",")]
    return check_input_dtypes(names, source)


def check_input_dtypes(names: list[str], source: str) -> list[str]:
    problem = input_dtype_problem(names)
    if problem:
        raise ConfigError(f"{source} {','.join(names)!r}: {problem}.")
    return names


def input_dtype_problem(names: list[str]) -> str | None:
    """What is wrong with a list of input types, or None."""
    bad = [name for name in names if name not in INPUT_DTYPES]
    if bad or not names:
        return (f"{bad[0] if bad else ''!r} is not an input type; use one of "
                f"{', '.join(INPUT_DTYPES)}, one for every input or one per input")  # fmt: skip
    return None


def selector_matches(code: str, name: str, selector: str) -> bool:
    """Whether a selector picks a rule: its code, a code prefix (``CL3``), its name, or ``ALL``."""
    return selector.upper() == "ALL" or code.startswith(selector.upper()) or name == selector
