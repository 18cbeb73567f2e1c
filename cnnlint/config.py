"""``[tool.cnnlint]`` in pyproject.toml, found by walking up from the linted file (as ruff does).

    [tool.cnnlint]
    target = "t4"                 # built-in name or path to a profile .toml (relative to this file)
    precision = "int8"
    select = ["CL2", "CL301"]
    ignore = ["CL201"]
    input-shape = [1, 3, 224, 224]
    fail-on = "warning"
    real-run-max-params = 100_000_000   # run a data-dependent forward on CPU up to this size

    [tool.cnnlint.models."examples/net.py::make_net"]   # spec as shown in reports, or a bare name
    kwargs = { width = 64 }
    input-shape = [[1, 3, 224, 224], [1, 16]]           # one shape, or one per forward input
    input-dtype = ["float32", "int64"]                  # one type for all inputs, or one per input

Command-line options override the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cnnlint.core import PRECISIONS, Shape
from cnnlint.errors import ConfigError
from cnnlint.options import input_dtype_problem
from cnnlint.spec import ModelSpec
from cnnlint.tables import factory_names, project_root, project_table

FailOn = Literal["error", "warning", "info", "never"]


def _shapes(value: Any) -> list[Shape]:
    """Accept one shape [1, 3, 224, 224] or several [[...], [...]]; dims must be positive ints."""
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of ints, or a list of such lists")
    shapes = value if all(isinstance(v, list) for v in value) else [value]
    result = []
    for shape in shapes:
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ValueError(f"shape {shape!r} must be a non-empty list of positive ints")
        result.append(tuple(shape))
    return result


def _dtypes(value: Any) -> list[str]:
    """Accept one type name ("int64") or one per input (["float32", "int64"])."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError('must be a type name such as "int64", or a list of them, one per input')
    problem = input_dtype_problem(names)
    if problem:
        raise ValueError(problem)
    return names


class _Inputs(BaseModel):
    """The forward inputs, set for every model ([tool.cnnlint]) or for one ([tool.cnnlint.models])."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    input_shape: list[Shape] | None = Field(default=None, alias="input-shape")
    input_dtype: list[str] | None = Field(default=None, alias="input-dtype")

    @field_validator("input_shape", mode="before")
    @classmethod
    def _check_shape(cls, value: Any) -> Any:
        return None if value is None else _shapes(value)

    @field_validator("input_dtype", mode="before")
    @classmethod
    def _check_dtype(cls, value: Any) -> Any:
        return None if value is None else _dtypes(value)


class ModelEntry(_Inputs):
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ToolConfig(_Inputs):
    target: str | None = None
    precision: Literal[PRECISIONS] | None = None  # type: ignore[valid-type]
    select: list[str] = Field(default_factory=list)
    extend_select: list[str] = Field(default_factory=list, alias="extend-select")
    ignore: list[str] = Field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = Field(default_factory=dict, alias="per-file-ignores")
    fail_on: FailOn | None = Field(default=None, alias="fail-on")
    # A model whose own forward branches on tensor values is run once on CPU up to this size.
    real_run_max_params: int | None = Field(default=None, ge=0, alias="real-run-max-params")
    models: dict[str, ModelEntry] = Field(default_factory=dict)


class ProjectConfig(BaseModel):
    """A validated ``[tool.cnnlint]`` with the folder its relative paths start from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    tool: ToolConfig = Field(default_factory=ToolConfig)
    path: Path | None = None  # the pyproject.toml, None when there is none

    @property
    def root(self) -> Path:
        return project_root(self.path)

    def model_entry(self, spec: ModelSpec) -> ModelEntry | None:
        """The ``[tool.cnnlint.models]`` entry for one model: keyed by its spec as shown in
        reports, by its file relative to this pyproject.toml, or by its bare name."""
        candidates = [spec.display]
        if spec.path is not None and spec.attr is not None:
            try:
                rel = spec.path.resolve().relative_to(self.root.resolve())
                candidates.append(f"{rel.as_posix()}::{spec.attr}")
            except ValueError:
                pass
        if spec.attr is not None:
            candidates.append(spec.attr)
        for key in candidates:
            if key in self.tool.models:
                return self.tool.models[key]
        return None

    def factory_names(self, file: Path) -> list[str]:
        """Names in ``[tool.cnnlint.models]`` that refer to functions in ``file``."""
        return factory_names(self.tool.models, self.root, file)


_config_cache: dict[Path | None, ProjectConfig] = {}


def load_config(start: Path) -> ProjectConfig:
    path, table = project_table(start)
    if path in _config_cache:
        return _config_cache[path]
    if path is None:
        config = ProjectConfig()
    else:
        try:
            tool = ToolConfig.model_validate(table)
        except ValidationError as exc:
            problems = "; ".join(
                f"key 'tool.cnnlint.{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"{path}: {problems}.") from None
        config = ProjectConfig(tool=tool, path=path)
    _config_cache[path] = config
    return config


def selection(
    tool: ToolConfig, select: list[str], ignore: list[str], extend_select: list[str]
) -> tuple[list[str], list[str]]:
    """The select and ignore lists a spec is linted with: the command line's over the file's,
    and ``extend-select`` (the file's and the command line's) added to a non-empty select (an
    empty select already means every rule the target enables)."""
    chosen = list(select or tool.select)
    if chosen:
        chosen += [s for s in (*tool.extend_select, *extend_select) if s not in chosen]
    return chosen, list(ignore or tool.ignore)
