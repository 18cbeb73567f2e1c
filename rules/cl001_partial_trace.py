"""Part of the model could not be traced; its cost and findings are missing.

What it flags
    A model whose own forward() needs tensor values (``if x.sum() > 0:``, a detection head's
    ``.item()`` or ``.tolist()``, ``nonzero``), or uses an op with no meta kernel: it was run once
    on CPU with a random input (models within ``real-run-max-params``), and the graph follows
    the path that input took; the finding points at the line that needed values.
    Submodules the trace stage could not look inside, so they are one opaque node in the graph:
    their output shapes are known, but not their layers. Each finding names the submodule and
    why it could not be traced (usually code that needs tensor values, such as ``.item()``,
    ``nonzero()`` or ``if x.sum() > 0``; meta tensors carry shapes, not values).

Why
    Every other rule and the cost model see only what was traced: a depthwise conv or a channel
    shuffle inside an opaque submodule goes unreported, and its FLOPs, bytes and latency are not
    in the totals. The finding says where the blind spot is, rather than failing the whole model.

Example
    class Gate(nn.Module):
        def forward(self, x):
            return self.conv(x) if x.mean() > 0 else x   # branch on a tensor value

Use instead
    Keep value-dependent decisions out of forward() at inference (fold them into the weights or
    make them a constructor flag), or isolate them in a small submodule so the rest is traced.
"""

from __future__ import annotations

from collections.abc import Iterator

from cnnlint.check import RuleContext
from cnnlint.graph import OpKind
from cnnlint.paths import display_path
from cnnlint.results import Finding

CODE = "CL001"
NAME = "partial-trace"
SEVERITY = "info"


def check(ctx: RuleContext) -> Iterator[Finding]:
    for site in ctx.graph.value_branches:
        yield Finding(
            message=(
                "the model's own forward() needs tensor values here (a branch on them, .item(), "
                ".tolist(), nonzero), so cnnlint ran it once on CPU with a random input: this "
                "graph follows the path a random input took, and layers on other branches are "
                "not checked or counted"
            ),
            fix=(
                "make the branch a constructor flag or move it out of forward() at inference, so "
                "the graph does not depend on the input"
            ),
            path=display_path(site.path), line=site.line, column=site.column,
        )  # fmt: skip
    for layer in ctx.graph.layers(OpKind.OPAQUE):
        reason = layer.attrs.get("reason", "unknown reason")
        counted = layer.attrs.get("counted_macs", 0)
        cost = (
            f"its {counted:,} multiply-accumulates were counted by torch's FLOP counter on one CPU "
            "run with all-ones values, and its memory traffic only at its edges"
            if counted else "its cost is not counted"
        )
        yield Finding(
            message=(
                f"{layer.label}: {layer.op} could not be traced ({reason}); it is one opaque "
                f"node, so layers inside it are not checked and {cost}"
            ),
            layer=layer,
            fix=(
                "move code that needs tensor values (.item(), nonzero, if on a tensor) out of "
                "forward(), or into a small submodule of its own"
            ),
            metrics={"params": layer.params, "output_shapes": [list(s) for s in layer.output_shapes]},
        )
