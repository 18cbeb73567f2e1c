"""Group convolutions with many groups (ShuffleNetV2 guideline G2).

What it flags
    Group convolutions (``1 < groups < in_channels``; depthwise convs are CL301's) with at least
    ``min_groups`` groups. Each finding gives the memory access cost (MAC) against a dense conv
    with the same FLOPs, and the estimated time of both on the target.

Why
    ShuffleNetV2 (Ma et al., ECCV 2018, Section 3, G2): a group conv on an h x w map has
        MAC = h*w*(c1 + c2) + k*k*c1*c2/g    for    B = h*w*k*k*c1*c2/g FLOPs (Eq. 2, k = 1),
    so at a fixed FLOP budget more groups buy wider feature maps, and the activation traffic
    grows with them. Their Table 2 keeps FLOPs fixed and scales both widths with sqrt(g) (128,
    180, 256, 360 channels for g = 1, 2, 4, 8): on a GTX 1080Ti throughput falls from 2451 to
    1725, 1026 and 634 batches/s, so g = 8 is about 3.9x slower than g = 1 for the same FLOPs;
    on ARM the drop is much smaller. This rule makes the same comparison for the
    flagged layer: the dense conv with the same kernel and FLOPs has widths c1/sqrt(g) and
    c2/sqrt(g), so its weights are identical and its activation traffic is sqrt(g) times lower:
        MAC_dense = (hi*wi*c1 + ho*wo*c2)/sqrt(g) + k*k*c1*c2/g.
    (Keeping c1 fixed instead, as the paper's derivation does, the dense conv has c2/g outputs
    and the excess is ho*wo*c2*(1 - 1/g); the sqrt(g) form matches the measured experiment.)
    On top of MAC, GPU libraries and NPUs run grouped convs as many small GEMMs that fill
    matrix units poorly: the profiles' ``group_conv`` efficiency, which the estimated times use.

    ``min_groups = 8`` is the largest group count of Table 2, the point at which the GPU cost
    is ~4x. RegNetX-400MF (group width 16) is flagged from its third stage (g = 10 and 25): its
    per-group width keeps matrix tiles fuller than ResNeXt's 4 channels, but the measured G2
    cost depends on the group count (Table 2's g = 8 case has 45 channels per group), and the
    cost model estimates those layers at about twice the time of their dense equivalents on a
    T4. Its first two stages (g = 2, 4) are not flagged.

Example
    nn.Conv2d(256, 256, 3, padding=1, groups=32)    # ResNeXt 32x8d-style 3x3

Use instead
    nn.Conv2d(48, 48, 3, padding=1)                 # dense, same FLOPs (256/sqrt(32) ~ 45)
    nn.Conv2d(256, 256, 3, padding=1, groups=4)     # or few groups, if parameters matter

Fix
    Use a dense conv of width c/sqrt(g) with the same FLOPs, or fewer groups (below
    ``min_groups``); the message gives that width rounded to the channel granule and the estimated
    time of both. Fewer groups at the same widths add FLOPs: where the target's estimate says that
    is slower, the message says so, and no one-click edit is offered. ``metrics.suggested_groups``
    is the largest group count below ``min_groups`` that divides both widths: the value
    ``cnnlint --diff`` and ``cnnlint review`` write into ``groups=`` when it is no slower.
    ``est_saving_ms``: the group conv's estimate minus the dense conv's.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import sqrt

from pydantic import Field

from cnnlint.check import RuleContext, RuleOptions
from cnnlint.cost import conv_traffic, conv_work, is_slower, round_to, saving, spatial
from cnnlint.graph import Layer, OpKind
from cnnlint.proposal import LiteralEdit, Measured, Variant, conv_of, with_channels
from cnnlint.results import Finding
from cnnlint.rules._common import duration, kernel_text, ms, percent

CODE = "CL102"
NAME = "excessive-group-conv"
SEVERITY = "warning"
# The one-click fix: fewer groups (fewer for every target's threshold). Fewer groups add FLOPs, so
# the edit is offered only where the target's estimate says that costs no time.
EDIT = LiteralEdit(
    argument="groups", current="groups", suggested="suggested_groups", prefer="min",
    no_slower=("est_conv_time_ms", "est_suggested_groups_time_ms"),
)


class Options(RuleOptions):
    min_groups: int = Field(
        default=8, ge=2,
        description="report group convs with at least this many groups",
    )
    min_latency_share: float = Field(
        default=0.0, ge=0, le=1,
        description=(
            "report only layers whose kernel takes at least this share of the model's estimated "
            "latency"
        ),
    )


def _shapes(layer: Layer) -> tuple[int, int, tuple[int, ...], int, int, int]:
    """(c_in, c_out, kernel, input pixels, output pixels, groups): the conv as conv_work takes it."""
    attrs = layer.attrs
    kernel = tuple(attrs.get("kernel_size") or (1,))
    return (attrs["in_channels"], attrs["out_channels"], kernel, spatial(layer.input_shape),
            spatial(layer.output_shape), attrs["groups"])  # fmt: skip


def _dense_equivalent(c_in: int, c_out: int, groups: int) -> tuple[float, float]:
    """Widths of the dense conv with the same kernel and FLOPs: c/sqrt(g) on both sides."""
    return c_in / sqrt(groups), c_out / sqrt(groups)


def group_conv_mac(layer: Layer) -> tuple[int, float]:
    """(MAC of the group conv, MAC of the dense conv with the same kernel and FLOPs), in elements."""
    c1, c2, kernel, hw_in, hw_out, groups = _shapes(layer)
    dense_in, dense_out = _dense_equivalent(c1, c2, groups)
    grouped = conv_traffic(c1, c2, kernel, hw_in, hw_out, groups)
    return grouped, conv_traffic(dense_in, dense_out, kernel, hw_in, hw_out)


def fewer_groups(c_in: int, c_out: int, below: int) -> int:
    """The largest group count under ``below`` that divides both widths (1: a dense conv)."""
    return max(g for g in range(1, below) if c_in % g == 0 and c_out % g == 0)


def check(ctx: RuleContext) -> Iterator[Finding]:
    graph, cost, profile, options = ctx.graph, ctx.cost, ctx.profile, ctx.options
    granule = profile.channel_granule[cost.precision]
    for layer in graph.layers(OpKind.GROUP_CONV):
        groups = layer.attrs.get("groups", 1)
        c1, c2 = layer.attrs.get("in_channels", 0), layer.attrs.get("out_channels", 0)
        if groups < options.min_groups or not c1 or not c2:
            continue
        share = cost.latency_share(layer)
        if share < options.min_latency_share:
            continue
        mac, mac_dense = group_conv_mac(layer)
        increase = mac / mac_dense - 1
        kernel, hw_in, hw_out = _shapes(layer)[2:5]
        dense_in, dense_out = _dense_equivalent(c1, c2, groups)
        _, mac_bytes = conv_work(c1, c2, kernel, hw_in, hw_out, groups, cost.precision)
        _, dense_bytes = conv_work(dense_in, dense_out, kernel, hw_in, hw_out, 1, cost.precision)
        batch = layer.input_shape[0]
        time_group = cost.estimate_conv(c1, c2, kernel, hw_in, hw_out, groups, batch)
        # The dense conv as the user would build it: its widths rounded to the granule.
        round_in = round_to(dense_in, granule.input)
        round_out = round_to(dense_out, granule.output)
        time_dense = cost.estimate_conv(round_in, round_out, kernel, hw_in, hw_out, batch=batch)
        layer_time = cost.time_of(layer)
        per_group = c1 // groups
        suggested = fewer_groups(c1, c2, options.min_groups)
        time_suggested = cost.estimate_conv(c1, c2, kernel, hw_in, hw_out, suggested, batch)
        yield Finding(
            message=(
                f"{layer.label}: group conv {kernel_text(layer)}, {c1} -> {c2} channels in "
                f"{groups} groups of {per_group}: memory access {percent(increase)} above a dense "
                f"conv with the same FLOPs; est. {duration(layer_time)}, {percent(share)} of "
                f"{profile.name} latency, vs est. {duration(time_dense)} for that dense conv"
            ),
            layer=layer,
            fix=(
                f"use a dense {kernel_text(layer)} conv {round_in} -> {round_out} channels "
                f"(c/sqrt({groups}) rounded to the granule, same FLOPs): est. {duration(time_group)} "
                f"-> {duration(time_dense)} for the conv; or fewer groups (< {options.min_groups}), "
                f"e.g. groups={suggested}: est. {duration(time_suggested)}"
                + (" (slower: fewer groups add FLOPs; for capacity, not speed)"
                   if is_slower(time_suggested, time_group) else "")
            ),
            metrics={
                "groups": groups,
                "in_channels": c1,
                "out_channels": c2,
                "channels_per_group": per_group,
                # The groups= value of the one-click fix (EDIT).
                "suggested_groups": suggested,
                "mac_bytes": mac_bytes,
                "dense_mac_bytes": round(dense_bytes),
                "mac_increase_percent": round(100 * increase, 2),
                "dense_in_channels": round(dense_in, 1),
                "dense_out_channels": round(dense_out, 1),
                # The proposed dense conv (what --measure builds: MEASURED).
                "dense_conv_in_channels": round_in,
                "dense_conv_out_channels": round_out,
                "est_time_ms": ms(layer_time),
                "est_conv_time_ms": ms(time_group),
                "est_dense_time_ms": ms(time_dense),
                "est_suggested_groups_time_ms": ms(time_suggested),
                "est_saving_ms": ms(saving(time_group, time_dense)),
                "latency_share": round(share, 6),
            },
        )


def _dense(finding: Finding, layer: Layer) -> Variant | None:
    """What --measure times: the group conv against the first proposal, one dense conv of the
    widths the finding names, with the same FLOPs."""
    m = finding.metrics
    c_in, c_out = m.get("dense_conv_in_channels"), m.get("dense_conv_out_channels")
    if not isinstance(c_in, int) or not isinstance(c_out, int) or not layer.is_conv():
        return None
    return Variant(f"{m.get('groups')} groups {m.get('in_channels')}->{m.get('out_channels')} -> dense "
                   f"{c_in}->{c_out}", conv_of(layer), conv_of(layer, in_channels=c_in, out_channels=c_out, groups=1),
                   layer.input_shape, with_channels(layer.input_shape, c_in))  # fmt: skip


MEASURED = Measured(_dense, estimated=("est_conv_time_ms", "est_dense_time_ms"))
