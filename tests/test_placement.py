"""The placement report: where each layer runs on an accelerator target, the partitions, and the
transfers between them in the latency; one decision with rule CL304."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET

import jsonschema
import pytest
from conftest import FIXTURES, TESTS, traced_graph

from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile
from cnnlint.report import ReportOptions, write_report
from cnnlint.report.contract import SCHEMA_FILE
from cnnlint.results import ModelResult

MODELS = FIXTURES / "placement_models.py"
MIDDLE, TAIL, LISTED = (f"{MODELS}::{name}" for name in ("GeluInTheMiddle", "LeakyInTheMiddle", "AllListed"))
SVG_NS = "{http://www.w3.org/2000/svg}"


def lint(spec: str, target: str) -> ModelResult:
    """The result of the whole check on one target, with its graph and cost kept."""
    result = check_graph(traced_graph(spec), load_profile(target), keep_stages=True)
    assert result.status == "ok", result.error
    return result


def text(results: list[ModelResult], fmt: str = "text") -> str:
    stream = io.StringIO()
    write_report(fmt, results, stream, ReportOptions(color=False))
    return stream.getvalue()


def latency_before_transfers_ms(result: ModelResult) -> float:
    _, cost = result.stages
    return cost.latency_s * 1e3


def test_an_op_the_target_lacks_in_the_middle_makes_two_partitions():
    result = lint(MIDDLE, "hi3519")
    placement = result.placement
    assert placement is not None
    assert (placement.accelerator, placement.fallback_device, placement.mode) == ("NPU", "CPU", "per-op")
    assert [(run.device, run.layers) for run in placement.runs] == [("NPU", 3), ("CPU", 1), ("NPU", 2)]
    assert [(run.first, run.last) for run in placement.runs] == [
        ("stem", "mid"), ("gelu", "gelu"), ("head", "act2")]  # fmt: skip
    assert (placement.layers, placement.on_accelerator) == (6, 5)
    assert (placement.partitions, placement.switches) == (2, 2)
    assert placement.fallback_layers == ["gelu"]
    # What crosses: the GELU's input (16x64x64 int8) to the CPU, its output back.
    assert placement.transfer_bytes == 2 * 16 * 64 * 64
    assert placement.transfer_ms > 0
    assert result.summary.latency_ms == pytest.approx(
        latency_before_transfers_ms(result) + placement.transfer_ms + placement.fallback_ms, rel=1e-9)  # fmt: skip
    # One decision, one arithmetic: CL304's round trip for the GELU is the placement's transfers.
    (finding,) = [f for f in result.findings if f.code == "CL304"]
    assert finding.metrics["locations"] == ["gelu"]
    assert finding.metrics["fallback_ms"] == pytest.approx(placement.transfer_ms, abs=1e-6)


def test_the_edge_tpu_runs_everything_after_the_first_cpu_op_on_the_cpu(tmp_path):
    result = lint(TAIL, "edgetpu")
    placement = result.placement
    assert (placement.accelerator, placement.mode) == ("Edge TPU", "first-unsupported-tail")
    assert [(run.device, run.layers, run.first) for run in placement.runs] == [
        ("Edge TPU", 2, "stem"), ("CPU", 4, "leaky")]  # fmt: skip
    assert (placement.partitions, placement.switches) == (1, 1)
    assert placement.fallback_layers == ["leaky", "mid", "act2", "head"]
    # Only the LeakyReLU is outside the Edge TPU's list: the convs after it leave by the cut.
    assert [f.metrics["locations"] for f in result.findings if f.code == "CL304"] == [["leaky"]]
    # One tensor crosses, once, over the host link.
    profile = load_profile("edgetpu")
    assert placement.transfer_bytes == 16 * 64 * 64
    assert placement.transfer_ms == pytest.approx(
        (2 * 16 * 64 * 64 / profile.transfer_bytes_per_s + profile.switch_overhead_s) * 1e3)  # fmt: skip
    assert result.summary.latency_ms == pytest.approx(
        latency_before_transfers_ms(result) + placement.transfer_ms + placement.fallback_ms, rel=1e-9)  # fmt: skip
    # The same list cut per op keeps the convs after it on the accelerator.
    per_op = tmp_path / "per_op.toml"
    per_op.write_text('extends = "edgetpu"\nname = "edgetpu-per-op"\n\n[placement]\nmode = "per-op"\n')
    placement = check_graph(traced_graph(TAIL), load_profile(str(per_op))).placement
    assert [(run.device, run.layers) for run in placement.runs] == [("Edge TPU", 2), ("CPU", 1), ("Edge TPU", 3)]
    assert (placement.partitions, placement.switches, placement.fallback_layers) == (2, 2, ["leaky"])


def test_a_fully_supported_model_is_one_partition_without_transfers():
    for target in ("hi3519", "edgetpu", "rk3588", "ethos-u55", "jetson-orin"):
        result = lint(LISTED, target)
        placement = result.placement
        assert placement is not None, target
        assert placement.on_accelerator == placement.layers == 4, target  # the dropout is dropped
        assert (placement.partitions, placement.switches, placement.transfer_ms) == (1, 0, 0.0), target
        assert len(placement.runs) == 1 and placement.runs[0].on_accelerator, target
        assert result.summary.latency_ms == pytest.approx(latency_before_transfers_ms(result), rel=1e-12)


@pytest.mark.parametrize("target", ["t4", "a4000", "h200", "arm-cpu", "x86-avx512", "generic"])
def test_targets_without_an_operator_list_have_no_placement(target):
    assert lint(MIDDLE, target).placement is None


@pytest.mark.parametrize("target", ["hi3519", "x3", "cv22", "rk3588", "jetson-orin", "ethos-u55", "apple-ane"])
@pytest.mark.parametrize("fixture", ["cl304_vendor_lists.py", "vendor_limits_bad.py"])
def test_the_layers_off_the_accelerator_are_the_ones_cl304_reports(fixture, target):
    """Per op: a layer leaves the accelerator exactly when CL304 reports it as unsupported,
    outside the vendor's list or outside a limit that is not performance guidance."""
    from cnnlint.load import ModelSettings, load
    from cnnlint.pipeline import graph_of
    from cnnlint.spec import ModelSpec

    for model in load(ModelSpec.parse(str(FIXTURES / fixture)), lambda _: ModelSettings()):
        result = check_graph(graph_of(model), load_profile(target))
        reported = {where for f in result.findings if f.code == "CL304" and f.severity != "info"
                    for where in f.metrics["locations"]}  # fmt: skip
        assert set(result.placement.fallback_layers) == reported, (model.name, target)


def test_the_text_summary_line_says_where_the_layers_run():
    middle, tail, listed = lint(MIDDLE, "hi3519"), lint(TAIL, "edgetpu"), lint(LISTED, "hi3519")
    report = text([middle, tail, listed, lint(MIDDLE, "t4")])
    summaries = [line for line in report.splitlines() if re.search(r"\[[\w-]+ \w+\]: ", line)]
    assert len(summaries) == 4
    transfer = f"{middle.placement.transfer_ms:.3f}"
    there = f"{middle.placement.fallback_ms:.3f}"
    assert (f"; 5 of 6 layers on the NPU (1 on the CPU), 2 partitions, est. +{transfer} ms transfers, "
            f"est. +{there} ms for them on the CPU; ") in summaries[0]  # fmt: skip
    assert f"est. {middle.summary.latency_ms:.3f} ms at batch 1" in summaries[0]
    assert "; 2 of 6 layers on the Edge TPU (leaky and all after it on the CPU), 1 partition, est. +" in summaries[1]
    assert "; all 4 layers on the NPU, 1 partition; " in summaries[2]
    assert "layers on the" not in summaries[3]  # t4: no placement
    markdown = text([middle, listed], "markdown")
    assert "| placement | on the fallback device |" in markdown
    assert "5 of 6 layers on the NPU (1 on the CPU), 2 partitions" in markdown and "`gelu`" in markdown


def test_json_carries_the_placement_and_validates_against_the_schema():
    schema = json.loads((TESTS.parent / SCHEMA_FILE).read_text(encoding="utf-8"))
    document = json.loads(text([lint(MIDDLE, "hi3519"), lint(TAIL, "edgetpu"), lint(MIDDLE, "t4")], "json"))
    jsonschema.validate(document, schema)
    middle, tail, gpu = (r["placement"] for r in document["results"])
    assert (middle["partitions"], middle["switches"], middle["fallback_layers"]) == (2, 2, ["gelu"])
    assert [run["device"] for run in middle["runs"]] == ["NPU", "CPU", "NPU"]
    assert middle["transfer_ms"] > 0
    assert tail["mode"] == "first-unsupported-tail" and tail["partitions"] == 1
    assert gpu is None


def test_the_html_report_draws_the_network_as_a_strip_coloured_by_device():
    pytest.importorskip("matplotlib", reason="cnnlint report needs the [report] extra (matplotlib)")
    from cnnlint.report.html_report import DEVICE_COLORS, ModelReport, render_html

    reports = []
    for spec, target in ((MIDDLE, "hi3519"), (MIDDLE, "t4")):
        result = lint(spec, target)
        graph, cost = result.stages
        reports.append(ModelReport(result, graph, cost))
    page = render_html(reports)
    assert page.count('<figure class="placement">') == 1  # the NPU; none on the t4
    strip = re.search(r'<figure class="placement">(<svg.*?</svg>)', page, flags=re.S).group(1)
    blocks = list(ET.fromstring(strip).iter(f"{SVG_NS}rect"))
    assert [b.get("fill") for b in blocks] == [DEVICE_COLORS[True], DEVICE_COLORS[False], DEVICE_COLORS[True]]
    widths = [float(b.get("width")) for b in blocks]
    assert widths[0] == pytest.approx(3 * widths[1], rel=1e-3) and widths[2] == pytest.approx(2 * widths[1], rel=1e-3)
    assert blocks[1].find(f"{SVG_NS}title").text == "gelu: 1 layer on the CPU"
    assert "5 of 6 layers on the NPU (1 on the CPU), 2 partitions" in page


def test_the_fallback_layers_are_timed_on_the_fallback_profile(tmp_path):
    """The layers the Edge TPU leaves to the CPU run there as kernels of their own, timed on the
    profile's fallback_profile; the latency holds that time. Without a fallback profile they keep
    the accelerator's estimate, and the summary says so."""
    from cnnlint.cost import kernel_time

    result = lint(TAIL, "edgetpu")
    placement, (graph, cost) = result.placement, result.stages
    cpu = load_profile("arm-cpu")
    there = sum(kernel_time(cpu, "int8", cost.of(n).flops, cost.of(n).bytes, cost.of(n).op_class)
                for n in ("leaky", "mid", "act2", "head"))  # fmt: skip
    here = sum(cost.of(n).time_s for n in ("leaky", "mid", "act2", "head"))
    assert placement.fallback_ms == pytest.approx((there - here) * 1e3) and placement.fallback_ms > 0
    assert f"est. +{placement.fallback_ms:.3f} ms for them on the CPU" in text([result])
    bare = tmp_path / "bare.toml"
    bare.write_text('extends = "edgetpu"\nname = "bare-edgetpu"\n\n[placement]\nfallback_profile = "edgetpu"\n')
    same = check_graph(traced_graph(TAIL), load_profile(str(bare)))
    assert same.placement.fallback_ms is not None and same.summary.latency_ms < result.summary.latency_ms
    unknown = check_graph(traced_graph(TAIL), load_profile("ethos-u55"))
    if unknown.placement.fallback_layers:
        assert unknown.placement.fallback_ms is None
        assert "(timed at NPU rates: no fallback profile)" in text([unknown])
        document = json.loads(text([unknown], "json"))  # a null fallback_ms is written as null
        assert document["results"][0]["placement"]["fallback_ms"] is None
