"""Where a CPU profile's error comes from, op class by op class: each kernel cnnlint prices,
against the same layers run alone on real tensors.

For every model, each fx node of its forward is timed on its own (its real input tensors, the
output freed after each call, as the calibration's microbenchmarks time theirs; one thread,
process time, the best of three loops), and the nodes of each kernel cnnlint plans are summed.
Beside it: the kernel's predicted time without the fresh-output term, the per-kernel model
overhead and the cold weights (which a kernel timed alone does not pay), from ``--profile``, a
profile calibrated on this machine (``cnnlint calibrate --threads 1 --clock process -o P.toml``)
just before. Printed: each model's
predicted and measured sums, then predicted / measured by op class and by layer type, all models
together. Each model's whole forward is timed too: what it takes beyond its layers alone, per
byte its kernels write to fresh buffers, sets what a model adds against the fresh-output cost the
calibration measures (``memory.fresh_output_gbps``). A ratio far from 1 in one class while the
others sit near it is a rate the calibration gets wrong for the shapes real layers have; the
whole-model fidelity run (``fidelity.py``) sees only the sum of all of them.

On a VM whose speed drifts, one run's per-model ratios move by 20% from one run to the next; the
classes' ratios against each other within one run are what to read.

    python benchmarks/ops_alone.py --profile P.toml [--models resnet50,mobilenet_v2,...]
"""

from __future__ import annotations

import argparse
import collections
import time
import warnings

DEFAULT_MODELS = "resnet50,mobilenet_v2,mobilenet_v3_large,efficientnet_b0,mnasnet1_0,regnet_y_400mf,densenet121"


def best_of_three(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(reps):
            fn()
        best = min(best, (time.process_time() - start) / reps)
    return best


def time_nodes_alone(model, x) -> dict[str, float]:
    """Seconds each fx node of ``model``'s forward takes on its own, by node name."""
    import torch
    from torch import fx

    gm = fx.symbolic_trace(model)
    times: dict[str, float] = {}

    class Alone(fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            if n.op in ("call_module", "call_function", "call_method") and isinstance(result, torch.Tensor):
                args, kwargs = self.fetch_args_kwargs_from_env(n)
                # an op that writes into its input (ReLU(inplace=True), out += x) works on a copy
                args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
                # the callable is resolved here, outside the timed loop: fx.Interpreter's
                # call_module finds the submodule by hasattr/getattr on each dotted name, ~30 us a
                # call on this VM, which timed alone made a small layer look 5x slower than it is
                if n.op == "call_module":
                    fn = self.fetch_attr(n.target)
                elif n.op == "call_method":
                    self_arg, *rest = args
                    fn, args = getattr(self_arg, n.target), tuple(rest)
                else:
                    fn = n.target

                def once():
                    return fn(*args, **kwargs)

                start = time.process_time()
                once()
                one = time.process_time() - start
                times[n.name] = best_of_three(once, max(3, min(200, int(0.02 / max(one, 1e-6)))))
            return result

    with torch.no_grad():
        Alone(gm).run(x)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True, help="a profile calibrated on this machine (.toml)")
    parser.add_argument("--models", default=DEFAULT_MODELS, help="torchvision classifiers, comma-separated")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch
    import torchvision.models as tvm

    from cnnlint.cost import compute_cost
    from cnnlint.graph.build import build_layer_graph
    from cnnlint.load import LoadedModel, meta_copy
    from cnnlint.profile import load_profile
    from cnnlint.timing import hold_freed_memory
    from cnnlint.trace import trace

    hold_freed_memory()  # as calibrate times: no page faults from memory glibc hands back
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # A layer timed alone pays none of what a model adds: per kernel (model_overhead_us), its cold
    # weights (memory.cold_weights_gbps), both from the calibration's model-like networks, and its
    # fresh output (taken off each kernel below).
    loaded = load_profile(args.profile)
    memory = loaded.memory.model_copy(update={"cold_weights_gbps": None})
    profile = loaded.model_copy(update={"model_overhead_us": 0.0, "memory": memory})
    predicted: collections.Counter = collections.Counter()
    measured: collections.Counter = collections.Counter()
    kernels: collections.Counter = collections.Counter()
    for name in args.models.split(","):
        model = tvm.get_model(name).eval()
        shape = (1, 3, 299, 299) if name == "inception_v3" else (1, 3, 224, 224)
        graph = build_layer_graph(trace(LoadedModel(name, meta_copy(model, name), [shape], {}, "meta")))
        cost = compute_cost(graph, profile, "fp32")
        x = torch.randn(shape)
        with torch.no_grad():
            whole = best_of_three(lambda: model(x), 5)
        alone = time_nodes_alone(model, x)
        total_p = total_m = 0.0
        unmatched = 0
        fresh = sum(kernel.fresh_output_bytes for kernel in cost.kernels.values())
        for head, kernel in cost.kernels.items():
            nodes = dict.fromkeys([head, *kernel.members])
            if not all(node in alone for node in nodes):
                unmatched += 1  # a kernel whose layers fx names differently: left out of both sums
                continue
            p = kernel.time_s - profile.fresh_output_s(kernel.fresh_output_bytes)
            m = sum(alone[node] for node in nodes)
            total_p, total_m = total_p + p, total_m + m
            for key in (kernel.op_class, f"{kernel.op_class} {graph[head].op}"):
                predicted[key] += p
                measured[key] += m
                kernels[key] += 1
        print(f"{name}: {len(cost.kernels)} kernels ({unmatched} unmatched); predicted {total_p * 1e3:.2f} ms, "
              f"layers alone {total_m * 1e3:.2f} ms, ratio {total_p / total_m:.2f}; whole forward "
              f"{whole * 1e3:.2f} ms, {(whole - total_m) / fresh:.2e} s more than its layers alone per byte of "
              f"fresh output ({fresh / 2**20:.1f} MiB)")
    print("\npredicted / measured alone, all models: kernels, predicted ms, measured ms, ratio")
    for key in sorted(measured, key=lambda k: (k.split()[0], " " in k, -measured[k])):
        indent = "    " if " " in key else "  "
        print(f"{indent}{key:36s} {kernels[key]:5d} {predicted[key] * 1e3:9.2f} {measured[key] * 1e3:9.2f} "
              f"{predicted[key] / measured[key]:6.2f}")


if __name__ == "__main__":
    main()
