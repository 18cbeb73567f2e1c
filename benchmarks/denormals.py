"""How much of a model's CPU time is arithmetic on subnormal floats: each forward timed with
torch's default (subnormals computed) and with ``torch.set_flush_denormal(True)``, alternating.

A shape-based cost model cannot see values. Swin's shifted-window attention adds -100 to the
masked logits; softmax makes those probabilities exp(-100) = 3.7e-44, a subnormal fp32 number
(the smallest normal one is 1.2e-38), and x86 cores compute on subnormals many times slower.
The product of those probabilities with the values then runs 10x slower than the same product
on normal numbers (192 x 49 x 49 by 49 x 32: 7.1 ms against 0.45 ms on one thread of a Xeon VM).
A mask of -inf (exp: exactly 0) or ``torch.finfo(dtype).min`` makes none.

One thread, process time, the median of ``--repeats`` forwards per setting, the settings
alternating ``--rounds`` times; random weights, eval mode, batch 1.

    python benchmarks/denormals.py [--models swin_t,swin_v2_t,...] [--rounds 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

DEFAULT_MODELS = "swin_t,swin_v2_t,maxvit_t,vit_b_32,resnet50,efficientnet_b0"


def forward_ms(model, x, repeats: int) -> float:
    import torch

    with torch.inference_mode():
        model(x)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.process_time()
            model(x)
            times.append(time.process_time() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch
    import torchvision.models as tvm

    torch.set_num_threads(1)
    print(f"{'model':18s} {'subnormals computed':>20s} {'flushed to zero':>16s} {'ratio':>6s}")
    for name in args.models.split(","):
        model, x = tvm.get_model(name).eval(), torch.randn(1, 3, 224, 224)
        times: dict[bool, list[float]] = {False: [], True: []}
        try:
            for _ in range(args.rounds):
                for flush in (False, True):
                    torch.set_flush_denormal(flush)
                    times[flush].append(forward_ms(model, x, args.repeats))
        finally:
            torch.set_flush_denormal(False)
        kept, flushed = statistics.median(times[False]), statistics.median(times[True])
        print(f"{name:18s} {kept:17.1f} ms {flushed:13.1f} ms {flushed / kept:6.2f}")


if __name__ == "__main__":
    main()
