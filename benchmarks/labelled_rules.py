"""Precision and recall of each rule on a labelled set of published architectures.

    python benchmarks/labelled_rules.py run -o after.json                   # this checkout
    python benchmarks/labelled_rules.py run --source OLD -o before.json     # another checkout's cnnlint
    python benchmarks/labelled_rules.py compare before.json after.json --readme README.md
    python benchmarks/labelled_rules.py run --only resnet18 --only mobilenet_v2 --show

The labels are tests/labelled/architectures.toml: per architecture and target, the rule codes
an expert expects to warn (``warn``) and those that should stay quiet (``quiet``), each with the
paper or vendor document behind it. A code is *reported* on a target when the model has a finding
of that code at warning or error severity there (info does not count).

Per rule: a true positive is a ``warn`` label the rule reports, a false negative one it does not,
a false positive a ``quiet`` label it reports, a true negative a ``quiet`` label it leaves alone.
Precision = TP / (TP + FP), recall = TP / (TP + FN); "total" sums the counts of every rule.
Findings on codes a label does not judge are counted as "unjudged", not scored. A model that
cannot be linted scores nothing and is listed.

``run`` lints every architecture once on all targets (one trace, several targets), through the
public API (``cnnlint.lint``), with the result cache off. ``--source DIR`` imports cnnlint and its
rules from the checkout at DIR instead of this one, so the same labels measure an older revision:

    git worktree add ../cnnlint-before d601da2
    python benchmarks/labelled_rules.py run --source ../cnnlint-before -o before.json
    git worktree remove --force ../cnnlint-before

Models that a spec cannot name (they need constructor arguments: smp, ultralytics YAMLs, a
re-parameterised timm model) are ``build`` expressions in the table; ``run`` writes them into a
generated file of zero-argument factories in a temporary folder and lints ``file.py::name``, as
a user lints a wrapper file. ``fixture`` entries are factories in tests/fixtures.

``compare`` scores both result files against the table as it is now and writes the per-rule
table (before | after) and every disagreement between the labels and the after run.

``table_problems(table)``, ``score(table, results)`` and ``lint_architecture(arch)`` are what
tests/test_labelled_architectures.py uses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
TABLE = REPO / "tests" / "labelled" / "architectures.toml"
FIXTURES = REPO / "tests" / "fixtures"
RESULTS = REPO / "benchmarks" / "results" / "labelled"
TARGETS = ("t4", "arm-cpu", "hi3519")
REPORTED = ("warning", "error")
FACTORY_FILE = "labelled_models.py"

# Names a ``build`` expression may use, and the import each needs.
BUILD_IMPORTS = {
    "torchvision": "import torchvision.models.segmentation\nimport torchvision",
    "timm": "import timm\nimport timm.utils",
    "smp": "import segmentation_models_pytorch as smp",
    "model_provider": "from pytorchcv import model_provider",
    "yolo": "",  # defined in the generated file itself
}
YOLO_HELPER = '''
def yolo(yaml, scale):
    """ultralytics' task model for a YAML it ships (what YOLO(yaml).model builds), at one scale."""
    from pathlib import Path

    import ultralytics
    from ultralytics.nn import tasks

    cfg = tasks.yaml_model_load(Path(ultralytics.__file__).parent / "cfg" / "models" / yaml)
    cfg["scale"] = scale
    return tasks.DetectionModel(cfg, verbose=False)
'''


# ------------------------------------------------------------------------------ the table
@dataclass
class Label:
    warn: list[str]
    quiet: list[str]
    why: str


@dataclass
class Architecture:
    name: str
    paper: str
    spec: str | None = None
    build: str | None = None
    fixture: str | None = None
    input_shape: list[int] | None = None
    labels: dict[str, Label] = field(default_factory=dict)

    def lint_spec(self, factory_folder: Path | None = None) -> str:
        if self.spec:
            return self.spec
        if self.fixture:
            return str(FIXTURES / self.fixture)
        assert factory_folder is not None, f"{self.name} needs the generated factory file"
        return f"{factory_folder / FACTORY_FILE}::{self.name}"


def load_table(path: Path = TABLE) -> list[Architecture]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    table = []
    for entry in data.get("architecture", []):
        labels = {target: Label(list(entry[target].get("warn", [])), list(entry[target].get("quiet", [])),
                                entry[target].get("why", ""))  # fmt: skip
                  for target in TARGETS if target in entry}  # fmt: skip
        table.append(Architecture(name=entry.get("name", ""), paper=entry.get("paper", ""),
                                  spec=entry.get("spec"), build=entry.get("build"),
                                  fixture=entry.get("fixture"), input_shape=entry.get("input_shape"),
                                  labels=labels))  # fmt: skip
    return table


def table_problems(table: list[Architecture], can_warn: dict[str, set[str]] | None = None) -> list[str]:
    """What is wrong with the table's form: missing fields, a code in both lists, a code that
    cannot warn on the target (``can_warn``: target -> codes enabled there at warning or error)."""
    problems = []
    names = [arch.name for arch in table]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"{name}: listed twice")
    for arch in table:
        where = arch.name or "<unnamed>"
        if sum(bool(x) for x in (arch.spec, arch.build, arch.fixture)) != 1:
            problems.append(f"{where}: exactly one of spec, build, fixture")
        if not arch.paper:
            problems.append(f"{where}: no paper")
        if arch.build and not arch.name.isidentifier():
            problems.append(f"{where}: a build entry's name must be a Python identifier")
        for target in TARGETS:
            label = arch.labels.get(target)
            if label is None:
                problems.append(f"{where}: no [{target}] labels")
                continue
            if not label.why.strip():
                problems.append(f"{where} [{target}]: no why")
            if set(label.warn) & set(label.quiet):
                problems.append(f"{where} [{target}]: {sorted(set(label.warn) & set(label.quiet))} in warn and quiet")
            if not label.warn and not label.quiet:
                problems.append(f"{where} [{target}]: nothing labelled")
            for code in label.warn + label.quiet:
                if can_warn is not None and code not in can_warn.get(target, set()):
                    problems.append(f"{where} [{target}]: {code} cannot warn on {target}")
    return problems


def codes_that_can_warn(targets: Iterable[str] = TARGETS) -> dict[str, set[str]]:
    """Per target, the rule codes enabled there at warning or error severity (the profile's
    ``[rules.CODE]`` over the rule's default), as ``cnnlint rules`` shows them."""
    from cnnlint.check import all_rules, settings_for
    from cnnlint.profile import load_profile

    out = {}
    for target in targets:
        profile = load_profile(target)
        settings = {rule.code: settings_for(rule, profile) for rule in all_rules()}
        out[target] = {code for code, s in settings.items() if s.enabled and s.severity in REPORTED}
    return out


# ------------------------------------------------------------------------------ linting
def use_source(source: Path) -> None:
    """Import cnnlint (and its rules, which live beside it in a checkout) from ``source``."""
    source = source.resolve()
    if not (source / "cnnlint" / "__init__.py").is_file():
        sys.exit(f"{source}: not a cnnlint checkout (no cnnlint/__init__.py)")
    if "cnnlint" in sys.modules:
        sys.exit("use_source() must run before cnnlint is imported")
    # An editable install maps cnnlint and cnnlint.rules to this checkout: drop its finder.
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, str(source))
    import cnnlint

    if (source / "rules" / "__init__.py").is_file():  # rules/ is the cnnlint.rules package
        cnnlint.__path__.append(str(source))
    import cnnlint.rules

    for module in (cnnlint, cnnlint.rules):
        if not Path(module.__file__).resolve().is_relative_to(source):
            sys.exit(f"{module.__name__} came from {module.__file__}, not {source}")


def write_factories(table: list[Architecture], folder: Path) -> None:
    lines = ['"""Generated by benchmarks/labelled_rules.py: one zero-argument factory per model."""', "",
             YOLO_HELPER]  # fmt: skip
    for arch in table:
        if not arch.build:
            continue
        imports = [BUILD_IMPORTS[name] for name in BUILD_IMPORTS if name + "." in arch.build
                   or name + "(" in arch.build]  # fmt: skip
        body = [f"    {line}" for block in imports for line in block.splitlines() if line]
        lines += ["", f"def {arch.name}():", *body, f"    return {arch.build}", ""]
    (folder / FACTORY_FILE).write_text("\n".join(lines), encoding="utf-8")


def lint_architecture(arch: Architecture, factory_folder: Path | None = None,
                      targets: Iterable[str] = TARGETS) -> dict[str, dict[str, Any]]:  # fmt: skip
    """{target: {"status", "error", "reported": {code: count}, "info": {code: count}}}."""
    import cnnlint

    targets = list(targets)
    start = time.perf_counter()
    try:
        report = cnnlint.lint(arch.lint_spec(factory_folder), target=targets, input_shape=arch.input_shape)
        results = report.model_dump(mode="json")["results"]
    except Exception as exc:  # a crash is this model's error, not the sweep's
        results = [{"target": t, "status": "error", "error": f"{type(exc).__name__}: {exc}", "findings": []}
                   for t in targets]  # fmt: skip
    seconds = round(time.perf_counter() - start, 2)
    out = {}

    def portable(error: str) -> str:  # no temporary or checkout paths in the stored results
        if factory_folder is not None:
            error = error.replace(f"{factory_folder}{os.sep}", "")
        return error.replace(f"{REPO}{os.sep}", "")

    for result in results:
        reported: dict[str, int] = {}
        info: dict[str, int] = {}
        for finding in result.get("findings", []):
            bucket = reported if finding["severity"] in REPORTED else info
            bucket[finding["code"]] = bucket.get(finding["code"], 0) + 1
        out[result["target"]] = {"status": result["status"], "error": portable(result.get("error") or "")[:500],
                                 "reported": dict(sorted(reported.items())),
                                 "info": dict(sorted(info.items())), "seconds": seconds}  # fmt: skip
    return out


def _revision(source: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True)
        return proc.stdout.strip()

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "cnnlint", "rules").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "subject": git("log", "-1", "--format=%s"),
            "uncommitted_files": dirty}  # fmt: skip


def run(table: list[Architecture], source: Path, progress: bool = True) -> dict[str, Any]:
    import cnnlint

    os.environ["CNNLINT_NO_CACHE"] = "1"
    models: dict[str, Any] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnlint-labelled-") as tmp:
        folder = Path(tmp)
        write_factories(table, folder)
        for i, arch in enumerate(table, 1):
            models[arch.name] = lint_architecture(arch, folder)
            if progress:
                first = next(iter(models[arch.name].values()))
                state = first["status"] if first["status"] == "ok" else f"ERROR {first['error'][:120]}"
                print(f"[{i}/{len(table)}] {arch.name}: {state} ({first['seconds']} s)", file=sys.stderr)
    return {"cnnlint_version": cnnlint.__version__, "source": _revision(source),
            "python": platform.python_version(), "targets": list(TARGETS),
            "wall_s": round(time.perf_counter() - start, 1), "models": models}  # fmt: skip


# ------------------------------------------------------------------------------ scoring
@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


@dataclass
class Score:
    rules: dict[str, Counts]
    overall: Counts
    # {"kind": "FP"|"FN", "code", "model", "target", "why", "found": what the run reported}
    disagreements: list[dict[str, str]]
    errors: list[tuple[str, str, str]]  # (model, target, why it could not be linted)
    unjudged: dict[str, int]  # code -> reported findings on codes no label judged


def score(table: list[Architecture], results: dict[str, Any]) -> Score:
    rules: dict[str, Counts] = {}
    disagreements, errors, unjudged = [], [], {}
    for arch in table:
        per_target = results["models"].get(arch.name)
        if per_target is None:
            errors += [(arch.name, target, "not in the results") for target in arch.labels]
            continue
        for target, label in arch.labels.items():
            result = per_target.get(target)
            if result is None or result["status"] != "ok":
                errors.append((arch.name, target, result["error"] if result else "not in the results"))
                continue
            reported = set(result["reported"])
            for code in label.warn:
                counts = rules.setdefault(code, Counts())
                if code in reported:
                    counts.tp += 1
                else:
                    counts.fn += 1
                    info = result["info"].get(code, 0)
                    disagreements.append({"kind": "FN", "code": code, "model": arch.name, "target": target,
                                          "why": label.why,
                                          "found": f"info only (x{info})" if info else "no finding"})  # fmt: skip
            for code in label.quiet:
                counts = rules.setdefault(code, Counts())
                if code in reported:
                    counts.fp += 1
                    disagreements.append({"kind": "FP", "code": code, "model": arch.name, "target": target,
                                          "why": label.why, "found": f"x{result['reported'][code]}"})  # fmt: skip
                else:
                    counts.tn += 1
            for code in reported - set(label.warn) - set(label.quiet):
                unjudged[code] = unjudged.get(code, 0) + 1
    overall = Counts(*(sum(getattr(c, f) for c in rules.values()) for f in ("tp", "fp", "fn", "tn")))
    return Score(dict(sorted(rules.items())), overall, disagreements, errors, dict(sorted(unjudged.items())))


def error_list(errors: list[tuple[str, str, str]]) -> list[str]:
    """One line per model and error, its targets together."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for model, target, error in errors:
        grouped.setdefault((model, error), []).append(target)
    return [f"- {model} [{', '.join(targets)}]: {error[:200]}" for (model, error), targets in grouped.items()]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _cell(counts: Counts | None) -> str:
    if counts is None:
        return "- | - |"
    return f"{_pct(counts.precision)} | {_pct(counts.recall)} |"


def score_table(before: Score | None, after: Score, common: tuple[Score, Score] | None = None) -> str:
    """The markdown table: per rule, labels, then precision and recall before and after.
    ``common``: (before, after) scored only on the models both runs linted, as a last row."""
    head = "| rule | warn labels | quiet labels |"
    rule = "|---|---:|---:|"
    if before is not None:
        head += " precision before | recall before |"
        rule += "---:|---:|"
    head += " precision after | recall after | FP after | FN after |"
    rule += "---:|---:|---:|---:|"
    lines = [head, rule]
    rows = [*after.rules.items(), ("total", after.overall)]
    for code, counts in rows:
        row = f"| {code} | {counts.tp + counts.fn} | {counts.fp + counts.tn} |"
        if before is not None:
            row += " " + _cell(before.overall if code == "total" else before.rules.get(code))
        row += f" {_pct(counts.precision)} | {_pct(counts.recall)} | {counts.fp} | {counts.fn} |"
        lines.append(row)
    if common is not None:
        b, a = common[0].overall, common[1].overall
        lines.append(f"| total, models both linted | {a.tp + a.fn} | {a.fp + a.tn} | {_cell(b)}"
                     f" {_pct(a.precision)} | {_pct(a.recall)} | {a.fp} | {a.fn} |")
    return "\n".join(lines)


def linted_by_both(table: list[Architecture], *runs: dict[str, Any]) -> list[Architecture]:
    """The table without the labels of a model and target that any of ``runs`` could not lint."""
    def ok(run_data: dict[str, Any], name: str, target: str) -> bool:
        result = run_data["models"].get(name, {}).get(target)
        return result is not None and result["status"] == "ok"

    kept = []
    for arch in table:
        labels = {t: label for t, label in arch.labels.items() if all(ok(r, arch.name, t) for r in runs)}
        if labels:
            kept.append(Architecture(arch.name, arch.paper, arch.spec, arch.build, arch.fixture,
                                     arch.input_shape, labels))  # fmt: skip
    return kept


def disagreement_list(result: Score) -> str:
    lines = []
    for d in sorted(result.disagreements, key=lambda d: (d["code"], d["kind"], d["model"], d["target"])):
        lines.append(f"- {d['kind']} {d['code']} {d['model']} [{d['target']}]: {d['found']}")
    return "\n".join(lines)


def readme(before: dict[str, Any] | None, after: dict[str, Any], table: list[Architecture]) -> str:
    after_score = score(table, after)
    before_score = score(table, before) if before is not None else None
    labels = sum(len(label.warn) + len(label.quiet) for arch in table for label in arch.labels.values())
    text = [
        "# Rules against a labelled set of architectures",
        "",
        "Generated by `python benchmarks/labelled_rules.py compare before.json after.json --readme README.md`",
        "from the labels in `tests/labelled/architectures.toml`: per architecture and target, the rule codes",
        "an expert expects to warn and those that should stay quiet, with the paper or vendor document",
        "behind each. A code is reported when the model has a finding of it at warning or error severity",
        "on the target. Precision = TP / (TP + FP), recall = TP / (TP + FN); `total` sums every rule.",
        "",
        f"{len(table)} architectures x {len(TARGETS)} targets ({', '.join(TARGETS)}), {labels} labels.",
    ]
    for title, run_data in (("before", before), ("after", after)):
        if run_data is None:
            continue
        src = run_data["source"]
        dirty = f", with uncommitted changes to {len(src['uncommitted_files'])} files" if src["uncommitted_files"] else ""
        text.append(f"- {title}: cnnlint at `{src['commit']}` ({src['subject'][:90]}){dirty}; {run_data['wall_s']} s.")
    common = None
    if before is not None:
        both = linted_by_both(table, before, after)
        common = (score(both, before), score(both, after))
    text += ["", score_table(before_score, after_score, common), ""]
    for title, result in (("before", before_score), ("after", after_score)):
        if result is None:
            continue
        if result.errors:
            text += [f"Not linted ({title}):", "", *error_list(result.errors), ""]
        if result.unjudged:
            text += [f"Warnings on codes no label judges ({title}): "
                     + ", ".join(f"{code} x{n}" for code, n in result.unjudged.items()), ""]  # fmt: skip
    text += ["## Disagreements after", "",
             "FP: a `quiet` label the rule reports; FN: a `warn` label it does not.", "",
             disagreement_list(after_score), ""]  # fmt: skip
    if before_score is not None:
        text += ["## Disagreements before", "", disagreement_list(before_score), ""]
    return "\n".join(text)


# ------------------------------------------------------------------------------ command line
def _print_score(name: str, result: Score) -> None:
    print(f"== {name}")
    print(score_table(None, result))
    for line in error_list(result.errors):
        print(f"not linted {line}")
    print(disagreement_list(result))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="lint every labelled architecture and write the results")
    run_p.add_argument("--source", type=Path, default=None,
                       help="a cnnlint checkout to import cnnlint from (default: this one)")
    run_p.add_argument("-o", "--out", type=Path, default=None, help="results JSON to write")
    run_p.add_argument("--only", action="append", default=[], help="architecture name (repeatable)")
    run_p.add_argument("--table", type=Path, default=TABLE)
    run_p.add_argument("--show", action="store_true", help="print each model's reported codes")
    cmp_p = sub.add_parser("compare", help="score two result files against the table")
    cmp_p.add_argument("before", type=Path)
    cmp_p.add_argument("after", type=Path)
    cmp_p.add_argument("--table", type=Path, default=TABLE)
    cmp_p.add_argument("--readme", type=Path, default=None, help="write the markdown report here")
    args = parser.parse_args(argv)

    if args.command == "run":
        source = args.source or REPO
        if args.source is not None:
            use_source(args.source)
        table = load_table(args.table)
        if args.only:
            unknown = set(args.only) - {a.name for a in table}
            if unknown:
                sys.exit(f"not in the table: {sorted(unknown)}")
            table = [a for a in table if a.name in args.only]
        results = run(table, source)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        if args.show:
            for name, per_target in results["models"].items():
                for target, r in per_target.items():
                    print(f"{name} [{target}] {r['status']} reported={r['reported']} info={r['info']}")
        _print_score(f"cnnlint {results['source']['commit']}", score(table, results))
    else:
        table = load_table(args.table)
        before = json.loads(args.before.read_text(encoding="utf-8"))
        after = json.loads(args.after.read_text(encoding="utf-8"))
        text = readme(before, after, table)
        if args.readme:
            args.readme.write_text(text, encoding="utf-8")
        print(text)


if __name__ == "__main__":
    main()
