"""Nothing users see changes by accident: today's JSON reports equal the recorded golden ones.

An intended change re-records them (``python tests/golden/record.py``) in the same commit, and the
commit message says why each difference is a fix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import record  # noqa: E402

pytestmark = pytest.mark.slow


def _key(result: dict) -> tuple[str, str]:
    return result["model"], result["target"]


def _differences(expected: dict, actual: dict, limit: int = 12) -> list[str]:
    want = {_key(r): r for r in expected["results"]}
    got = {_key(r): r for r in actual["results"]}
    lines = [f"missing result {k}" for k in want.keys() - got.keys()]
    lines += [f"unexpected result {k}" for k in got.keys() - want.keys()]
    for key in sorted(want.keys() & got.keys()):
        a, b = want[key], got[key]
        for field in sorted(set(a) | set(b)):
            if a.get(field) != b.get(field):
                if field == "findings":
                    old = {json.dumps(f, sort_keys=True) for f in a[field]}
                    new = {json.dumps(f, sort_keys=True) for f in b[field]}
                    lines += [f"{key} lost finding {f}" for f in sorted(old - new)[:3]]
                    lines += [f"{key} new finding {f}" for f in sorted(new - old)[:3]]
                else:
                    lines.append(f"{key} {field}: {a.get(field)!r} -> {b.get(field)!r}")
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


@pytest.mark.parametrize("name", sorted(record.GOLDEN))
def test_reports_equal_the_golden_ones(name: str) -> None:
    expected = json.loads((record.HERE / name).read_text())
    actual = json.loads(json.dumps(record.GOLDEN[name](), sort_keys=True))
    # Every torchvision classifier lints, by plain fx (no trace fallback): what the zoo test
    # asked of them in a run of its own.
    for result in actual["results"]:
        assert result["status"] == "ok", (result["model"], result["error"])
        assert not any(n.startswith("trace:") for n in result["notes"]), (result["model"], result["notes"])
    differences = _differences(expected, actual)
    assert not differences, (
        "reports differ from the golden ones (re-record with tests/golden/record.py if intended):\n"
        + "\n".join(differences)
    )
