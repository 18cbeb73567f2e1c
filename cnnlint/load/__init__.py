"""Stage 1, load: a ModelSpec (:mod:`cnnlint.spec`) -> nn.Module instances built on ``meta``.

    importing.py  a spec's code imported, and its own modules forgotten afterwards
    sites.py      where each layer was constructed (the line a finding points at)
    build.py      the factory called in the cheapest build mode that works; meta copies
    hints.py      what a constructor that needs arguments needs, and where to give it
    shapes.py     the input shapes to trace with: given, declared by the model, or guessed
    models.py     :func:`load`: every model a spec names, through all of the above

The names other modules use are imported here, so ``from cnnlint.load import load`` holds.
"""

from cnnlint.load.build import meta_copy
from cnnlint.load.hints import needs_arguments_message, required_parameters
from cnnlint.load.importing import import_attr, import_file, project_root, spec_imports
from cnnlint.load.models import LoadedModel, ModelSettings, load
from cnnlint.load.shapes import (
    GUESSED_SIZES,
    SIZE_ATTRIBUTES,
    declared_input_shapes,
    default_input_shapes,
    input_dtypes_for,
    input_shapes_for,
    larger_guesses,
)
from cnnlint.load.sites import Chain, library_model_dir, record_construction_sites

__all__ = [
    "GUESSED_SIZES",
    "SIZE_ATTRIBUTES",
    "Chain",
    "LoadedModel",
    "ModelSettings",
    "declared_input_shapes",
    "default_input_shapes",
    "import_attr",
    "import_file",
    "input_dtypes_for",
    "input_shapes_for",
    "larger_guesses",
    "library_model_dir",
    "load",
    "meta_copy",
    "needs_arguments_message",
    "project_root",
    "record_construction_sites",
    "required_parameters",
    "spec_imports",
]
