"""`cnnlint review` on real git repositories made in a temp dir, and the one-click fixes.

The pull request (main -> feature) adds a depthwise layer, fixes an alignment, adds a model,
deletes one, renames a file, repairs a file that failed to import at base, and widens a layer
through a constant that sits outside the diff's hunks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from cnnlint.cli import main
from cnnlint.fixes import plan_results, unified_diff
from cnnlint.options import RunOptions
from cnnlint.review.compare import review
from cnnlint.review.git import WORKTREE_PREFIX, GitError, hunk_lines, worktree
from cnnlint.review.render import COMMENT_LIMIT, MARKER, github_review, markdown

from conftest import lint_specs


TARGETS = ["t4", "x3"]

MISALIGNED = '''\
from torch import nn


class {name}(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.mid = nn.Conv2d(16, {width}, 3, padding=1)
        self.out = nn.Conv2d(self.mid.out_channels, 16, 1)

    def forward(self, x):
        return self.out(self.mid(self.stem(x)))
'''

PLAIN = '''\
from torch import nn


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.body = nn.Conv2d(32, 32, 3, padding=1){depthwise}

    def forward(self, x):
        return {forward}
'''

ADDED = '''\
from torch import nn


class Added(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.mid = nn.Conv2d(16, 36, 3, padding=1)
        self.wide = nn.Conv2d(self.mid.out_channels, 64, 1)
        self.grouped = nn.Conv2d(64, 64, 1, groups=16)
        self.out = nn.Conv2d(64, 16, 1)

    def forward(self, x):
        return self.out(self.grouped(self.wide(self.mid(self.stem(x)))))
'''

FAR = '''\
from torch import nn

WIDTH = {width}


class Far(nn.Module):
    """A docstring long enough to keep the layer out of the hunk of the WIDTH line.

    One.
    Two.
    Three.
    """

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.mid = nn.Conv2d(16, WIDTH, 3, padding=1)
        self.out = nn.Conv2d(WIDTH, 16, 1)

    def forward(self, x):
        return self.out(self.mid(self.stem(x)))
'''


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    return subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=repo, env=env,
                          check=True, capture_output=True, text=True).stdout  # fmt: skip


def write(repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text)


def worktrees(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")]  # fmt: skip


def leftover_folders() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{WORKTREE_PREFIX}*"))


@pytest.fixture(scope="module", autouse=True)
def private_tempdir(tmp_path_factory):
    """Worktrees go to a folder of this module's own, so a leftover is ours to see."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("scratch")))
        yield


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("pr")
    git(repo, "init", "-q", "-b", "main")
    write(repo, "plain.py", PLAIN.format(depthwise="", forward="self.body(self.stem(x))"))
    write(repo, "fixme.py", MISALIGNED.format(name="FixMe", width=36))
    write(repo, "gone.py", MISALIGNED.format(name="Gone", width=36))
    write(repo, "old_name.py", MISALIGNED.format(name="Moved", width=36))
    write(repo, "broken.py", 'raise RuntimeError("broken at base")\n')
    write(repo, "far.py", FAR.format(width=32))
    write(repo, "helpers.py", "def helper():\n    return 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "checkout", "-qb", "feature")
    write(repo, "plain.py", PLAIN.format(
        depthwise="\n        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)",
        forward="self.dw(self.body(self.stem(x)))"))  # fmt: skip
    git(repo, "commit", "-qam", "add a depthwise layer")
    write(repo, "fixme.py", MISALIGNED.format(name="FixMe", width=40))
    git(repo, "commit", "-qam", "fix an alignment")
    write(repo, "added.py", ADDED)
    git(repo, "add", "added.py")
    git(repo, "commit", "-qm", "add a model")
    git(repo, "rm", "-q", "gone.py")
    git(repo, "commit", "-qm", "delete a model")
    git(repo, "mv", "old_name.py", "new_name.py")
    git(repo, "commit", "-qm", "rename a file")
    write(repo, "broken.py", MISALIGNED.format(name="Broken", width=36))
    write(repo, "far.py", FAR.format(width=36))
    write(repo, "helpers.py", "def helper():\n    return 2\n")
    git(repo, "commit", "-qam", "repair broken.py, widen far.py, touch a helper")
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-qb", "rename-only")
    git(repo, "mv", "old_name.py", "renamed.py")
    git(repo, "commit", "-qm", "only a rename")
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-qb", "regress")
    write(repo, "plain.py", PLAIN.format(depthwise="", forward="self.body(self.stem(x))")
          + 'raise ImportError("no longer imports")\n')  # fmt: skip
    git(repo, "commit", "-qam", "break plain.py")
    git(repo, "checkout", "-q", "feature")
    return repo


@pytest.fixture(scope="module")
def reviewed(repo):
    return review("main", "feature", RunOptions(targets=TARGETS), start=repo)


def pair(result, model: str, target: str = "t4"):
    (found,) = [p for p in result.pairs if p.model == model and p.target == target]
    return found


def codes(findings, prefix: str = "CL") -> list[str]:
    return sorted(f.code for f in findings if f.code.startswith(prefix) and f.code != "CL501")


def test_changed_models_are_classified(reviewed):
    added = pair(reviewed, "added.py::Added")
    assert added.status == "added" and {"CL201", "CL102"} <= set(codes(added.new))
    plain = pair(reviewed, "plain.py::Plain")
    assert plain.status == "changed" and codes(plain.new) == ["CL301"] and plain.fixed == []
    fixme = pair(reviewed, "fixme.py::FixMe")
    assert codes(fixme.fixed) == ["CL201"] and codes(fixme.new) == []
    # A deleted model's findings left with it: they are not "fixed".
    gone = pair(reviewed, "gone.py::Gone")
    assert gone.status == "deleted" and gone.fixed == [] and gone.new == []


def test_a_renamed_file_keeps_its_findings(reviewed):
    moved = pair(reviewed, "new_name.py::Moved")
    assert moved.status == "changed" and moved.base is not None
    assert moved.new == [] and moved.fixed == [] and codes(moved.unchanged) == ["CL201"]
    assert not [p for p in reviewed.pairs if p.model.startswith("old_name.py")]


def test_a_model_whose_base_failed_is_not_all_new(reviewed):
    broken = pair(reviewed, "broken.py::Broken")
    assert broken.status == "base-failed" and "broken at base" in broken.base_error
    assert broken.head is not None and codes(broken.head.findings) == ["CL201"]
    assert broken.new == [] and not any(p.model == "broken.py" for p in reviewed.pairs)
    assert "could not be linted at base" in markdown(reviewed)


def test_files_without_models_are_passed_over(reviewed):
    assert not [p for p in reviewed.pairs if p.model.startswith("helpers.py")]
    assert {f.path for f in reviewed.files} >= {"helpers.py", "new_name.py", "gone.py"}


def test_every_target_is_compared(reviewed):
    assert {p.target for p in reviewed.pairs} == set(TARGETS)
    text = markdown(reviewed)
    assert "### t4" in text and "### x3" in text


def test_no_worktree_is_left_behind(repo, reviewed):
    assert len(worktrees(repo)) == 1 and not leftover_folders()


def test_markdown_summary_then_new_then_fixed(reviewed):
    text = markdown(reviewed)
    assert text.startswith(MARKER)
    header = "| model | GMACs | params (M) | memory (MB) | est. latency (ms) | Δ latency | new | fixed |"
    assert text.count(header) == len(TARGETS)
    plain = next(line for line in text.splitlines() if line.startswith("| `plain.py::Plain`"))
    base_ms, head_ms = (float(x) for x in plain.split("|")[5].split("→"))
    assert head_ms > base_ms and f"+{100 * (head_ms - base_ms) / base_ms:.0f}" in plain.split("|")[6]
    assert text.index("### New findings") < text.index("### Fixed findings") < text.index("### Not compared")
    assert "models on t4</summary>" not in text  # seven models: the tables stay open
    new = len(reviewed.new_findings())
    assert new > 10 and f"<details><summary>{new} new findings</summary>" in text


def test_markdown_folds_many_models_and_stays_under_the_limit(reviewed):
    many = [replace(p, model=f"m{i}/{p.model}") for i in range(40) for p in reviewed.pairs]
    big = replace(reviewed, pairs=many)
    text = markdown(big)
    assert "<details><summary>" in text and text.count("<details>") == text.count("</details>")
    assert len(text) <= COMMENT_LIMIT
    small = markdown(big, limit=6000)
    assert len(small) <= 6000
    assert "Cut to stay under GitHub's 6,000-character limit" in small
    assert "new finding(s)" in small.split("Cut to stay under")[1]
    assert small.count("<details>") == small.count("</details>")


def test_github_review_places_comments_on_diff_lines_only(repo, reviewed):
    body = github_review(reviewed)
    head = git(repo, "rev-parse", "feature").strip()
    assert body["commit_id"] == head and body["event"] == "COMMENT" and MARKER in body["body"]
    diff = git(repo, "diff", "main...feature", "--", "plain.py", "added.py", "far.py")
    assert body["comments"]
    for comment in body["comments"]:
        assert set(comment) == {"path", "line", "side", "body"} and comment["side"] == "RIGHT"
        patch = git(repo, "diff", "-M", "main...feature", "--", comment["path"])
        assert comment["line"] in hunk_lines(patch), comment
        assert comment["body"].startswith(MARKER)
    placed = {(c["path"], c["line"]) for c in body["comments"]}
    assert ("plain.py", 9) in placed and ("added.py", 8) in placed
    # far.py's layer line is not in the diff (only WIDTH changed): its new finding is in the body.
    far = pair(reviewed, "far.py::Far")
    assert codes(far.new) == ["CL201"]
    assert not [p for p in placed if p[0] == "far.py"] and "`far.py:17`" in body["body"]
    assert "far.py" in diff


def test_suggestions_only_for_literals_and_they_lint_clean(repo, reviewed, tmp_path):
    comments = {(c["path"], c["line"]): c["body"] for c in github_review(reviewed)["comments"]}
    assert "```suggestion" not in comments[("plain.py", 9)]  # CL301: no literal edit
    for line, code in ((8, "CL201"), (10, "CL102")):
        text = comments[("added.py", line)]
        assert "changes the shape of the layer's weights" in text
        edited = text.split("```suggestion\n")[1].split("\n```")[0]
        lines = (repo / "added.py").read_text().splitlines(keepends=True)
        lines[line - 1] = edited + "\n"
        fixed = tmp_path / f"added_{code}.py"
        fixed.write_text("".join(lines))
        for target in TARGETS:
            (result,) = lint_specs(str(fixed), target=target, select=[code])
            assert result.status == "ok" and result.findings == [], (target, edited)


def test_fail_on_new_depends_only_on_new_findings(repo, monkeypatch):
    monkeypatch.chdir(repo)
    runner = CliRunner()
    args = ["review", "--base", "main", "--target", "t4", "--format", "json"]
    failing = runner.invoke(main, [*args, "--head", "feature", "--fail-on-new", "warning"])
    assert failing.exit_code == 1, failing.output
    assert json.loads(failing.stdout)["models"]
    # The same new findings are warnings: --fail-on-new error lets them pass.
    lenient = runner.invoke(main, [*args, "--head", "feature", "--fail-on-new", "error"])
    assert lenient.exit_code == 0, lenient.output
    # Only a rename: the renamed model's CL201 is old, so the review passes, though
    # `cnnlint check renamed.py` fails on it.
    passing = runner.invoke(main, [*args, "--head", "rename-only", "--fail-on-new", "warning"])
    assert passing.exit_code == 0, passing.output
    models = json.loads(passing.stdout)["models"]
    assert [m["model"] for m in models] == ["renamed.py::Moved"]
    assert "CL201" in [f["code"] for f in models[0]["unchanged"]] and models[0]["new"] == []
    assert len(worktrees(repo)) == 1 and not leftover_folders()


def test_a_model_that_no_longer_lints_counts_as_new(repo):
    result = review("main", "regress", RunOptions(targets=["t4"]), start=repo)
    plain = pair(result, "plain.py::Plain")
    assert plain.status == "head-failed" and plain.regressed and "no longer imports" in plain.head_error
    assert result.fails("error") and not result.fails("never") and result.new_findings() == []
    assert "could not be linted at head" in markdown(result)


def test_the_worktree_is_removed_on_error_and_interrupt(repo):
    for exc in (RuntimeError("lint crashed"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with worktree(repo, "main") as folder:
                assert (folder / "old_name.py").is_file() and len(worktrees(repo)) == 2
                raise exc
        assert len(worktrees(repo)) == 1 and not folder.exists()
    with pytest.raises(GitError, match="not a commit"):
        review("no-such-branch", "feature", RunOptions(targets=["t4"]), start=repo)
    assert len(worktrees(repo)) == 1 and not leftover_folders()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_worktree_is_removed_on_a_signal(repo, sig):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from cnnlint.review.git import worktree
        with worktree(Path({str(repo)!r}), "main") as folder:
            print(folder, flush=True)
            time.sleep(60)
    """)
    # A job started in the background inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: the child gets the default disposition a terminal would give it.
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    folder = Path(child.stdout.readline().strip())
    assert folder.is_dir() and len(worktrees(repo)) == 2
    child.send_signal(sig)
    child.wait(timeout=30)
    assert len(worktrees(repo)) == 1 and not folder.exists()


def test_review_of_the_working_tree(tmp_path):
    repo = tmp_path / "wt"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "net.py", MISALIGNED.format(name="Net", width=32))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    write(repo, "net.py", MISALIGNED.format(name="Net", width=36))  # not committed
    result = review("main", None, RunOptions(targets=["t4"]), start=repo)
    net = pair(result, "net.py::Net")
    assert result.head_ref == "working tree" and codes(net.new) == ["CL201"]
    assert (repo / "net.py").read_text() == MISALIGNED.format(name="Net", width=36)
    assert len(worktrees(repo)) == 1


def test_diff_and_fix_on_the_command_line(tmp_path, monkeypatch):
    repo = tmp_path / "fix"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "added.py", ADDED)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    monkeypatch.chdir(repo)
    runner = CliRunner()
    diff = runner.invoke(main, ["added.py", "--target", "t4", "--diff"])
    assert diff.exit_code == 1, diff.output
    assert "-        self.mid = nn.Conv2d(16, 36, 3, padding=1)" in diff.output
    assert "+        self.mid = nn.Conv2d(16, 40, 3, padding=1)" in diff.output
    assert "+        self.grouped = nn.Conv2d(64, 64, 1, groups=4)" in diff.output
    assert (repo / "added.py").read_text() == ADDED
    unsafe = runner.invoke(main, ["added.py", "--target", "t4", "--fix"])
    assert "unsafe" in unsafe.output and (repo / "added.py").read_text() == ADDED
    (repo / "fix.patch").write_text(diff.stdout)
    git(repo, "apply", "--check", "fix.patch")
    git(repo, "apply", "fix.patch")
    patched = (repo / "added.py").read_text()
    write(repo, "patched.py", patched)  # a new path: this process has imported added.py already
    (result,) = lint_specs("patched.py", target="t4", select=["CL201", "CL102"])
    assert result.status == "ok" and result.findings == []
    git(repo, "checkout", "added.py")
    fixed = runner.invoke(main, ["added.py", "--target", "t4", "--fix", "--unsafe-fixes",
                                 "--select", "CL102"])  # fmt: skip
    assert fixed.exit_code == 0, fixed.output
    assert "groups=4" in (repo / "added.py").read_text() and "Fixed 1" in fixed.output


def test_no_edit_without_a_literal_on_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "far.py", FAR.format(width=36))
    write(tmp_path, "split.py", MISALIGNED.format(name="Split", width="\n            36").replace(
        "(16, \n", "(\n            16,\n"))  # fmt: skip
    results = lint_specs("far.py", "split.py", target="t4", select=["CL201"])
    assert all(r.status == "ok" for r in results) and all(r.findings for r in results)
    assert plan_results(results) == [] and unified_diff(plan_results(results)) == ""


# ------------------------------------------------------------------------- models reached by imports
BLOCK = '''\
from torch import nn


def block(c):
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1{depthwise}), nn.Conv2d(c, 16, 1), nn.ReLU())
'''

USES_BLOCK = '''\
from torch import nn

from {module} import block


class {name}(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.body = block(32)

    def forward(self, x):
        return self.body(self.stem(x))
'''


def test_an_unchanged_model_importing_a_changed_file_is_reviewed(tmp_path):
    repo = tmp_path / "imports"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "lib").mkdir()
    write(repo, "lib/__init__.py", "")
    write(repo, "lib/blocks.py", BLOCK.format(depthwise=""))
    write(repo, "lib/net.py", USES_BLOCK.format(module="blocks", name="PackageNet"))  # beside it
    write(repo, "model.py", USES_BLOCK.format(module="lib.blocks", name="TopNet"))  # from the top
    write(repo, "unrelated.py", USES_BLOCK.format(module="nowhere", name="Unrelated"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "checkout", "-qb", "feature")
    write(repo, "lib/blocks.py", BLOCK.format(depthwise=", groups=c"))  # now depthwise
    git(repo, "commit", "-qam", "depthwise blocks")

    result = review("main", "feature", RunOptions(targets=["t4"]), start=repo)
    assert [f.path for f in result.files] == ["lib/blocks.py"]
    assert result.importers == ["lib/net.py", "model.py"]  # not unrelated.py, whose import is elsewhere
    reviewed = {p.model: p for p in result.pairs}
    assert set(reviewed) == {"lib/net.py::PackageNet", "model.py::TopNet"}
    for found in reviewed.values():
        assert found.status == "changed"
        # The depthwise conv is new; the finding points into the changed blocks.py.
        assert {(f.code, f.path) for f in found.new} >= {("CL302", "lib/blocks.py")}, found.new
    summary = markdown(result)
    assert "1 changed Python file(s) and 2 that import them" in summary
