"""A suppression comment that silenced nothing.

What it flags
    A ``# cnnlint: disable=...``, ``disable-next=...`` or ``disable-file=...`` comment naming a
    rule that found nothing where the comment applies, or naming no rule at all (a typo). The
    finding points at the comment and lists the codes to remove from it. Reported only for
    rules that ran (a ``--select`` that leaves a rule out does not make its suppressions unused)
    and only for the files models were linted from.

Why
    A suppression outlives the layer it was written for: once the depthwise conv is gone, a
    leftover ``disable=CL301`` would silently hide the next one added on that line. ruff reports
    unused ``noqa`` comments (RUF100) for the same reason.

Example
    self.pw = nn.Conv2d(32, 64, 1)  # cnnlint: disable=CL301    (a 1x1 conv is not depthwise)

Use instead
    self.pw = nn.Conv2d(32, 64, 1)

Known problems
    A suppression used only on targets this run did not check is reported as unused; run the
    targets it was written for (``-t t4 -t arm-cpu``), or ``--ignore CL002``.

"""

CODE = "CL002"
NAME = "unused-suppression"
SEVERITY = "info"
# Produced by the engine (cnnlint.suppress) after the rules run, from the source's comments;
# it is documented, selected and ignored like a rule, and has no check() of its own.
ENGINE = True
