"""Built-in target profiles load and validate; user profiles extend them; bad files fail clearly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cnnlint.check import all_rules, find_rule, settings_for
from cnnlint.errors import ProfileError
from cnnlint.graph import OpKind
from cnnlint.profile import OP_CLASSES, Profile, builtin_profile_names, load_profile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROFILE_DIR = Path(__file__).resolve().parent.parent / "rules" / "profiles"
BUILTINS = sorted(path.stem for path in PROFILE_DIR.glob("*.toml"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_names_are_the_profile_directory() -> None:
    assert builtin_profile_names() == BUILTINS
    assert BUILTINS, "no built-in profiles found"


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_profile_loads_and_is_complete(name: str) -> None:
    profile = load_profile(name)
    assert isinstance(profile, Profile)
    assert profile.name == name
    assert profile.source == f"{name} (built-in)"
    assert set(profile.efficiency) == set(OP_CLASSES)
    for precision in profile.precisions:
        assert profile.peak_tflops[precision] > 0
        assert precision in profile.channel_granule
        ridge = profile.peak_flops(precision) / profile.bandwidth_bytes_per_s
        assert profile.ridge_point(precision) == pytest.approx(ridge)
    assert profile.default_precision in profile.precisions
    assert profile.memory.bandwidth_gbps > 0
    assert set(profile.fusion) == {"norm", "activation", "residual_add"}
    for kind, source in profile.unsupported_ops.items():
        assert kind in OpKind.ALL and source.strip()
        assert not profile.supports(kind)
    for rule in all_rules():
        settings_for(rule, profile)  # every [rules.CODE] table validates against its rule


def _raw(name: str) -> dict:
    return tomllib.loads((PROFILE_DIR / f"{name}.toml").read_text(encoding="utf-8"))


def _base_settings(name: str):
    """How each rule resolves on what this profile builds on: its `extends`, or the defaults."""
    parent = _raw(name).get("extends")
    base = load_profile(parent) if parent else Profile.model_validate(
        {**load_profile(name).model_dump(exclude={"rules", "rule_notes"}), "rules": {}})
    return {rule.code: settings_for(rule, base) for rule in all_rules()}


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_profile_states_only_deltas(name: str) -> None:
    raw = _raw(name)
    base = _base_settings(name)
    for code, table in raw.get("rules", {}).items():
        for key, value in table.items():
            if key == "why":
                continue
            settings = base[code]
            was = {"enabled": settings.enabled, "severity": settings.severity}.get(
                key, getattr(settings.options, key, None))
            assert value != was, f"{name}.toml [rules.{code}] {key} = {value!r} restates its base"
        assert set(table) - {"why"}, f"{name}.toml [rules.{code}] says nothing"
    parent = raw.get("extends")
    if parent:
        inherited = _raw(parent)
        for key, value in raw.items():
            if key not in ("extends", "rules", "name", "description"):
                assert value != inherited.get(key), f"{name}.toml {key} restates {parent}.toml"


def test_a_kind_the_profile_does_not_know_runs() -> None:
    for name in BUILTINS:
        assert load_profile(name).supports("a_kind_added_later")


def test_unsupported_ops_need_a_known_kind_and_a_source(tmp_path: Path) -> None:
    typo = _write(tmp_path / "typo.toml", 'extends = "t4"\n[unsupported_ops]\nchanel_shuffle = "x"\n')
    with pytest.raises(ProfileError, match="chanel_shuffle"):
        load_profile(str(typo))
    silent = _write(tmp_path / "silent.toml", 'extends = "t4"\n[unsupported_ops]\nmatmul = ""\n')
    with pytest.raises(ProfileError, match="unsupported_ops.matmul"):
        load_profile(str(silent))
    listed = load_profile(str(_write(
        tmp_path / "npu.toml", 'extends = "t4"\n[unsupported_ops]\nmatmul = "vendor guide"\n')))
    assert not listed.supports(OpKind.MATMUL) and listed.supports(OpKind.CONV)


def test_rule_why_documents_the_table_and_never_reaches_the_rule(tmp_path: Path) -> None:
    path = _write(tmp_path / "why.toml",
                  'extends = "t4"\n[rules.CL102]\nmin_groups = 4\nwhy = "measured here"\n')
    profile = load_profile(str(path))
    assert profile.rule_notes["CL102"] == "measured here"
    assert "why" not in profile.rules["CL102"]
    assert settings_for(find_rule("CL102"), profile).options.min_groups == 4


def test_rule_settings_follow_the_hardware() -> None:
    # The depthwise rule is off exactly where depthwise convolution keeps a usable share of peak.
    depthwise = find_rule("CL301")
    on, off = [], []
    for name in BUILTINS:
        profile = load_profile(name)
        (on if settings_for(depthwise, profile).enabled else off).append(profile)
    assert on and off
    assert min(p.efficiency["depthwise_conv"] for p in off) > max(
        p.efficiency["depthwise_conv"] for p in on)


def test_user_profile_extends_builtin(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "my-t4.toml",
        'extends = "t4"\nname = "my-t4"\n\n[memory]\nbandwidth_gbps = 250.0\n',
    )
    profile = load_profile(str(path))
    t4 = load_profile("t4")
    assert profile.name == "my-t4"
    assert profile.memory.bandwidth_gbps == 250.0
    assert profile.peak_tflops == t4.peak_tflops
    assert profile.efficiency == t4.efficiency
    assert profile.channel_granule == t4.channel_granule
    assert profile.rules == t4.rules
    assert profile.kernel_overhead_us == t4.kernel_overhead_us
    assert profile.source == str(path)


def test_user_profile_relative_to_base_dir(tmp_path: Path) -> None:
    _write(tmp_path / "base.toml", 'extends = "t4"\nname = "base"\n')
    _write(tmp_path / "child.toml", 'extends = "base.toml"\nname = "child"\n')
    profile = load_profile("child.toml", base_dir=tmp_path)
    assert profile.name == "child"
    assert profile.peak_tflops == load_profile("t4").peak_tflops


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "typo.toml", 'extends = "t4"\nbandwith_gbps = 100.0\n')
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    message = str(info.value)
    assert "bandwith_gbps" in message
    assert str(path) in message


def test_negative_bandwidth_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "neg.toml", 'extends = "t4"\n\n[memory]\nbandwidth_gbps = -5.0\n')
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert "memory.bandwidth_gbps" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_op_class_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path / "eff.toml", 'extends = "t4"\n\n[efficiency]\nwinograd = 0.5\n')
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert "winograd" in str(info.value)


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    _write(tmp_path / "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(ProfileError) as info:
        load_profile(str(first))
    assert "cycle" in str(info.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.toml", 'extends = "t4"\nname = \n')
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert str(path) in str(info.value)
    assert "invalid TOML" in str(info.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert str(path) in str(info.value)


def test_unknown_target_lists_builtins() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("no-such-target")
    message = str(info.value)
    assert "no-such-target" in message
    for name in BUILTINS:
        assert name in message


def test_norm_and_transcendental_fall_back_to_elementwise(tmp_path: Path) -> None:
    """A profile that does not price norms or exp-based activations on their own (every built-in
    one) costs them as element-wise ops; one that does (a calibrated CPU) costs them its way."""
    base = load_profile("arm-cpu")
    assert base.efficiency["norm"] == base.efficiency["transcendental"] == base.efficiency["elementwise"]
    assert base.kernel_overhead_s("norm") == base.kernel_overhead_s("elementwise")
    (tmp_path / "own.toml").write_text(
        'extends = "arm-cpu"\nname = "own"\n[efficiency]\ntranscendental = 0.01\n'
        "[overhead_us]\nelementwise = 7.0\nnorm = 30.0\n"
    )
    own = load_profile(str(tmp_path / "own.toml"))
    assert own.efficiency["transcendental"] == 0.01
    assert own.efficiency["norm"] == base.efficiency["elementwise"]
    assert own.kernel_overhead_s("norm") == pytest.approx(30e-6)
    assert own.kernel_overhead_s("transcendental") == pytest.approx(7e-6)  # elementwise's


def test_model_overhead_is_paid_by_every_kernel(tmp_path: Path) -> None:
    """``model_overhead_us`` (what calibrate measures a model adds per kernel) adds to each
    launched kernel's time, and so to latency once per kernel."""
    from conftest import traced_graph

    from cnnlint.cost import compute_cost

    (tmp_path / "calls.toml").write_text('extends = "arm-cpu"\nname = "calls"\nmodel_overhead_us = 10.0\n')
    graph = traced_graph("torchvision.models:mobilenet_v2")
    plain = compute_cost(graph, load_profile("arm-cpu"))
    calls = compute_cost(graph, load_profile(str(tmp_path / "calls.toml")))
    assert calls.latency_s - plain.latency_s == pytest.approx(len(plain.kernels) * 10e-6)
    assert load_profile(str(tmp_path / "calls.toml")).kernel_overhead_s("norm") == pytest.approx(
        load_profile("arm-cpu").kernel_overhead_s("norm") + 10e-6)
