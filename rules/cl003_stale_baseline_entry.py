"""A baseline entry that no longer matches a finding.

What it flags
    An entry of the ``--baseline`` file (code, model, module path, target) for a model and target
    that were linted, with the rule run, that matched no finding: the problem it recorded was
    fixed (or the module was renamed). Entries for models or rules this run did not check are
    neither matched nor stale.

Why
    A baseline accepts the findings of the day it was written. An entry left behind after its
    finding is fixed would accept the same finding again if it came back, so a regression
    would pass unseen. Rewriting the baseline drops it.

Example
    cnnlint models/ --baseline .cnnlint-baseline.json
    (the depthwise conv in features.3 became a regular conv: its CL301 entry is stale)

Use instead
    cnnlint models/ --write-baseline .cnnlint-baseline.json

"""

CODE = "CL003"
NAME = "stale-baseline-entry"
SEVERITY = "info"
# Produced by the engine (cnnlint.baseline) when a baseline is applied; it is documented,
# selected and ignored like a rule, and has no check() of its own.
ENGINE = True
