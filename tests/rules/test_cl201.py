"""CL201 channel-misaligned: the image input's channels are exempt however they reach the stem."""

from __future__ import annotations

from conftest import FIXTURES, lint_specs

CODE = "CL201"


def test_image_channels_through_normalisation_pools_and_activations_are_exempt() -> None:
    results = lint_specs(str(FIXTURES / "cl201_image_input.py"), target="t4", select=[CODE])
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    found = {r.model.rsplit("::", 1)[1]: [(f.module, f.line) for f in r.findings] for r in results}
    # The 3-channel stems read the image (after x - mean, a pool, BN, ReLU): not flagged. A layer
    # whose 19 input channels come out of a concat is no longer reading the image: flagged.
    assert found == {"NormalisedInput": [("narrow", 13)], "PooledInput": [("mix", 28)]}
