"""Record (or compare) the golden JSON reports that guard refactors against unintended change.

    python tests/golden/record.py            # rewrite the golden files
    pytest tests/test_golden.py              # compare against them

Golden set: every torchvision classifier on t4, arm-cpu and hi3519, with every rule. (The rule
fixtures are guarded by their own ``# expect:`` lines and text snapshots in
tests/test_rule_fixtures.py, in process; a third copy of them here only cost time.) ``cnnlint_version`` is dropped, and paths into installed packages are
written from ``site-packages/`` on, so the files do not depend on where the venv lives.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
TORCHVISION_TARGETS = ("t4", "arm-cpu", "hi3519")
_SITE = re.compile(r"^.*?site-packages/")


def torchvision_specs() -> list[str]:
    import torchvision

    return [f"torchvision.models:{name}" for name in torchvision.models.list_models(module=torchvision.models)]


def normalise(document: dict) -> dict:
    document.pop("cnnlint_version", None)
    for result in document["results"]:
        for finding in result["findings"]:
            finding["path"] = _SITE.sub("site-packages/", finding["path"])
            for related in finding.get("related", []):
                related["path"] = _SITE.sub("site-packages/", related["path"])
    return document


def run(specs: list[str], targets: list[str] | tuple[str, ...]) -> dict:
    command = [str(Path(sys.executable).with_name("cnnlint")), *specs, "--format", "json", "--jobs", "2",
               "--fail-on", "never", "--no-isolate"]  # fmt: skip
    for target in targets:
        command += ["--target", target]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1, 2) or not done.stdout.strip():
        raise RuntimeError(f"cnnlint failed ({done.returncode}):\n{done.stderr}")
    return normalise(json.loads(done.stdout))


GOLDEN = {
    "torchvision.json": lambda: run(torchvision_specs(), TORCHVISION_TARGETS),
}


def main() -> None:
    for name, produce in GOLDEN.items():
        (HERE / name).write_text(json.dumps(produce(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
