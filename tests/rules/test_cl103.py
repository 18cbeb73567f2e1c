"""CL103 fragmented-block: many parallel branches of small kernels between a fork and its join."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import FIXTURES, check_on, traced_graph

from cnnlint.check import RuleContext
from cnnlint.cost import compute_cost
from cnnlint.pipeline import check_graph
from cnnlint.profile import load_profile
from cnnlint.rules import cl103_fragmented_block as rule

BAD = str(FIXTURES / "cl103_bad.py")
GOOD = str(FIXTURES / "cl103_good.py")


def _found(spec: str, target: str = "t4", input_shape=None):
    if input_shape is None:
        result = check_on(spec, target, select=["CL103"])
    else:
        result = check_graph(traced_graph(spec, input_shape), load_profile(target), select=["CL103"])
    assert result.status == "ok", result.error
    return [f for f in result.findings if f.code == "CL103"]


@pytest.mark.parametrize(
    ("name", "line", "branches"),
    [("InceptionNet", 17, 4), ("ThreeDeepBranches", 8, 3)],
)
def test_bad_fixture_is_flagged_at_the_first_conv_of_the_block(name: str, line: int, branches: int) -> None:
    findings = _found(f"{BAD}::{name}")
    assert [(f.code, Path(f.path).name, f.line) for f in findings] == [("CL103", "cl103_bad.py", line)]
    finding = findings[0]
    assert finding.severity == "warning"
    assert finding.metrics["branches"] == branches
    assert finding.metrics["kernels"] >= 8
    assert 0 < finding.metrics["overhead_share"] < 1
    assert finding.message.startswith(finding.module + ":")
    assert "ShuffleNet V2 G3" in finding.fix


def test_inception_fix_merges_the_sibling_1x1_convs() -> None:
    (finding,) = _found(f"{BAD}::InceptionNet")
    assert finding.metrics["mergeable_1x1"] == 3  # b1, b2a, b3a read the fork; b4 reads the pool
    assert finding.metrics["est_saving_ms"] > 0
    assert "merge the 3 1x1 convs" in finding.fix


def test_thresholds_are_options() -> None:
    graph = traced_graph(f"{BAD}::ThreeDeepBranches")
    profile = load_profile("t4")
    cost = compute_cost(graph, profile)
    assert len(list(rule.check(RuleContext(graph, cost, profile, rule.Options(), {})))) == 1
    assert list(rule.check(RuleContext(graph, cost, profile, rule.Options(max_kernels=9), {}))) == []
    graph = traced_graph(f"{BAD}::InceptionNet")
    cost = compute_cost(graph, profile)
    assert list(rule.check(RuleContext(graph, cost, profile, rule.Options(min_branches=5, max_kernels=99), {}))) == []




# The block finder walks the graph's own adjacency; networkx's algorithms are the independent
# answer it must equal, on random DAGs (several sinks included: the virtual sink).


@st.composite
def _dags(draw) -> nx.DiGraph:
    size = draw(st.integers(1, 24))
    names = [f"n{i}" for i in range(size)]
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]  # fmt: skip
    graph.add_edges_from(draw(st.lists(st.sampled_from(pairs), max_size=3 * size)) if pairs else [])
    return graph


def _networkx_post_dominators(graph: nx.DiGraph) -> dict[str, str]:
    sinks = [n for n in graph if graph.out_degree(n) == 0]
    reverse = graph.reverse(copy=True)
    root = sinks[0] if len(sinks) == 1 else rule._VIRTUAL_SINK
    if len(sinks) > 1:
        reverse.add_edges_from((root, sink) for sink in sinks)
    return nx.immediate_dominators(reverse, root)


@settings(max_examples=300, deadline=None)
@given(_dags())
def test_post_dominators_equal_networkx(graph: nx.DiGraph) -> None:
    assert rule._post_dominators(graph) == _networkx_post_dominators(graph)


@settings(max_examples=300, deadline=None)
@given(_dags(), st.data())
def test_branches_are_the_weakly_connected_components_networkx_finds(graph: nx.DiGraph, data) -> None:
    region = set(data.draw(st.lists(st.sampled_from(sorted(graph)), unique=True)))
    ours = sorted(sorted(c) for c in rule._components(graph, region))
    theirs = sorted(sorted(c) for c in nx.weakly_connected_components(graph.subgraph(region)))
    assert ours == theirs
