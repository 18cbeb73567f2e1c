"""Built-in target profiles load and validate; user profiles extend them; bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlint.errors import ProfileError
from cnnlint.graph import OpKind
from cnnlint.profile import OP_CLASSES, Profile, builtin_profile_names, load_profile

BUILTINS = {"generic", "t4", "a4000", "arm-cpu", "hi3519", "x3", "cv22"}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_names_are_the_expected_set() -> None:
    assert set(builtin_profile_names()) == BUILTINS


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_profile_loads_and_is_complete(name: str) -> None:
    profile = load_profile(name)
    assert isinstance(profile, Profile)
    assert profile.name == name
    assert profile.source == f"{name} (built-in)"
    assert set(profile.efficiency) == set(OP_CLASSES)
    for precision in profile.precisions:
        assert profile.peak_tflops[precision] > 0
        assert precision in profile.channel_granule
    assert profile.default_precision in profile.precisions
    assert profile.memory.bandwidth_gbps > 0
    assert set(profile.fusion) == {"norm", "activation", "residual_add"}
    for rule in ("CL201", "CL301"):
        assert isinstance(profile.rules[rule]["enabled"], bool)
        assert profile.rules[rule]["severity"] in {"error", "warning", "info"}
    if profile.supported_ops is not None:
        assert set(profile.supported_ops) <= OpKind.ALL


def test_builtin_kinds_and_precisions() -> None:
    assert load_profile("a4000").kind == "gpu"
    assert load_profile("arm-cpu").kind == "cpu"
    assert load_profile("arm-cpu").default_precision == "fp32"
    for name in ("hi3519", "x3", "cv22"):
        profile = load_profile(name)
        assert profile.kind == "npu"
        assert profile.precisions == ["int8"]
        assert profile.default_precision == "int8"


@pytest.mark.parametrize(
    ("name", "enabled"),
    [
        ("t4", True),
        ("a4000", True),
        ("hi3519", True),
        ("cv22", True),
        ("x3", False),
        ("arm-cpu", False),
    ],
)
def test_depthwise_rule_per_target(name: str, enabled: bool) -> None:
    assert load_profile(name).rules["CL301"]["enabled"] is enabled


def test_depthwise_efficiency_reflects_the_hardware() -> None:
    # Depthwise is efficient on ARM CPUs and on the X3's BPU, poor on GPUs and other NPUs.
    for fast in ("arm-cpu", "x3"):
        for slow in ("t4", "a4000", "hi3519", "cv22"):
            fast_eff = load_profile(fast).efficiency["depthwise_conv"]
            slow_eff = load_profile(slow).efficiency["depthwise_conv"]
            assert fast_eff > slow_eff, (fast, slow)


def test_hi3519_int8_granule() -> None:
    granule = load_profile("hi3519").channel_granule["int8"]
    assert (granule.input, granule.output) == (4, 16)


def test_channel_shuffle_support() -> None:
    for name in ("hi3519", "cv22"):
        profile = load_profile(name)
        assert not profile.supports(OpKind.CHANNEL_SHUFFLE)
        assert profile.supports(OpKind.CONV)
        assert profile.supports(OpKind.INPUT)
    for name in ("generic", "t4", "a4000", "arm-cpu", "x3"):
        assert load_profile(name).supports(OpKind.CHANNEL_SHUFFLE)


def test_ridge_point_t4_fp16() -> None:
    assert load_profile("t4").ridge_point("fp16") == pytest.approx(65e12 / 320e9)
    assert load_profile("t4").ridge_point("fp16") == pytest.approx(203, abs=0.5)


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
