"""Each layer inside a model against the same layer alone: where a model's time beyond its
layers comes from.

For each torchvision classifier, every leaf module is timed inside the whole forward (process
time between a forward pre-hook and a forward hook, the median over nine forwards after warm-up)
and alone on the real input it had there (median of five calls after two). Printed per module
type: the sum alone, the sum inside the model, their ratio; and the whole forward, with and
without the hooks, and what lies between the leaves (the model's own Python code and the
functional ops its forward calls, such as a residual add). The cost model's single-op rates come
from microbenchmarks that run one op alone in a loop, so a ratio above 1 here is time the
calibration does not see. One thread, freed memory held (as calibrate times).

    python benchmarks/in_model.py [--models resnet50,mobilenet_v3_small,...]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
import warnings

DEFAULT_MODELS = "resnet50,mobilenet_v2,mobilenet_v3_small,shufflenet_v2_x1_0"


def median_process_s(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import torch
    import torchvision.models as tvm

    from cnnlint.timing import hold_freed_memory

    hold_freed_memory()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for name in args.models.split(","):
        model = getattr(tvm, name)().eval()
        x = torch.randn(1, 3, 224, 224)
        leaves = [m for m in model.modules() if not list(m.children())]
        inputs: dict = {}
        inside: dict = collections.defaultdict(list)
        started: dict = {}
        with torch.inference_mode():
            for _ in range(3):
                model(x)
            whole = median_process_s(lambda: model(x), 9)
            hooks = [m.register_forward_hook(lambda m, i, o: inputs.__setitem__(m, tuple(t.clone() for t in i)))
                     for m in leaves]  # fmt: skip
            model(x)
            for hook in hooks:
                hook.remove()
            hooks = [m.register_forward_pre_hook(lambda m, i: started.__setitem__(m, time.process_time()))
                     for m in leaves]  # fmt: skip
            hooks += [m.register_forward_hook(lambda m, i, o: inside[m].append(time.process_time() - started[m]))
                      for m in leaves]  # fmt: skip
            hooked = median_process_s(lambda: model(x), 9)
            for hook in hooks:
                hook.remove()
            alone: collections.Counter = collections.Counter()
            within: collections.Counter = collections.Counter()
            for module in leaves:
                if module not in inputs:
                    continue
                given = inputs[module]
                for _ in range(2):
                    module(*given)
                kind = type(module).__name__
                alone[kind] += median_process_s(lambda: module(*given), 5)
                within[kind] += statistics.median(inside[module][1:])
        print(f"{name}: whole forward {whole * 1e3:.2f} ms ({hooked * 1e3:.2f} with the hooks); leaves alone "
              f"{sum(alone.values()) * 1e3:.2f} ms, inside the model {sum(within.values()) * 1e3:.2f} ms; "
              f"between the leaves {(hooked - sum(within.values())) * 1e3:.2f} ms")  # fmt: skip
        for kind, seconds in within.most_common():
            ratio = seconds / alone[kind] if alone[kind] else float("nan")
            print(f"  {kind:<22} alone {alone[kind] * 1e3:8.2f} ms  inside {seconds * 1e3:8.2f} ms  ratio {ratio:5.2f}")


if __name__ == "__main__":
    main()
