"""User-facing errors. Each carries one paragraph that names the file, model or key at fault."""


class CnnlintError(Exception):
    """An error the user can fix; reported without a traceback and with exit code 2."""

    model: str | None = None  # the model it belongs to, when a spec names several


class ConfigError(CnnlintError):
    """Bad ``[tool.cnnlint]`` configuration or command-line option."""


class ProfileError(CnnlintError):
    """Bad or unknown target profile."""


class LoadError(CnnlintError):
    """A model spec could not be imported or built."""


class TraceError(CnnlintError):
    """A model was built but could not be traced into a graph."""


class NoModelsError(LoadError):
    """A file defines no model. An error when the file was named; skipped when a directory was."""
