"""How numbers read in findings and reports, in one style: times, shares of latency, sizes and
measured speedups. The rules (through ``cnnlint.rules._common``), the measure stage and the
reports share them; this module imports nothing, so every layer may use it."""

from __future__ import annotations


def percent(fraction: float) -> str:
    value = 100 * fraction
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


def duration(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def ms(seconds: float) -> float:
    """Seconds as milliseconds for a finding's metrics, to the nanosecond."""
    return round(seconds * 1e3, 6)


def measured_time(seconds: float) -> str:
    """A measured time for a message: "0.21 ms", "250 ms"."""
    value = seconds * 1e3
    return f"{value:.0f} ms" if value >= 100 else f"{value:.3g} ms"


def speedup(before_s: float, after_s: float) -> tuple[str, bool]:
    """("1.4x faster", False), or ("1.4x slower", True): a measured fix's effect, said as such."""
    ratio = before_s / after_s if after_s > 0 else float("inf")
    slower = ratio < 1
    factor = 1 / ratio if slower else ratio
    amount = f"{factor:.1f}x" if factor >= 1.1 else f"{factor:.2f}x"
    return f"{amount} {'slower' if slower else 'faster'}", slower


def megabytes(num_bytes: float) -> str:
    """Bytes for a memory-access figure: "1.91 MB", "802.8 kB"."""
    if num_bytes >= 1e6:
        return f"{num_bytes / 1e6:.2f} MB"
    return f"{num_bytes / 1e3:.1f} kB"


def size(num_bytes: float) -> str:
    """Bytes for a tensor or traffic size, rounded: "3.2 MB", "401 KB", "64 B"."""
    if num_bytes >= 1e6:
        return f"{num_bytes / 1e6:.1f} MB"
    if num_bytes >= 1e3:
        return f"{num_bytes / 1e3:.0f} KB"
    return f"{num_bytes:.0f} B"
