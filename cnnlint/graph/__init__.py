"""Stage 3, graph: torch.fx graph -> LayerGraph (the builder is :mod:`cnnlint.graph.build`).

The LayerGraph types themselves live in :mod:`cnnlint.core`, below every stage, and are
re-exported here for the stages after this one.
"""

from cnnlint.core import Layer, LayerGraph, OpKind, Shape, SourceLocation

__all__ = ["Layer", "LayerGraph", "OpKind", "Shape", "SourceLocation"]
