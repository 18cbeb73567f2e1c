"""What ``cnnlint review`` asks git: the changed files, the lines a diff shows, and a checkout of
another revision in a temporary worktree that is always removed. Torch-free.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cnnlint.errors import CnnlintError

WORKTREE_PREFIX = "cnnlint-review-"


class GitError(CnnlintError):
    """git failed or was given a revision it does not know."""


def git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise GitError("cnnlint review needs git on PATH.") from exc
    if done.returncode != 0:
        message = done.stderr.strip() or done.stdout.strip()
        raise GitError(f"git {' '.join(args)} failed in {repo}: {message}")
    return done.stdout


def toplevel(start: Path) -> Path:
    return Path(git(start, "rev-parse", "--show-toplevel").strip())


def commit_of(repo: Path, ref: str) -> str:
    """The full sha of ``ref``; a clear error for a revision git does not know."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except GitError:
        raise GitError(f"--base/--head {ref!r}: not a commit in {repo}.") from None


@dataclass(frozen=True)
class ChangedFile:
    """One .py file the diff touches: ``status`` is git's letter (A, M, D, R, C)."""

    status: str
    path: str  # at head (for D: the deleted path)
    old_path: str  # at base (for A: the new path)


def _range(base: str, head: str | None) -> list[str]:
    # base...head: the changes head made since it forked from base, as a pull request shows them.
    return [f"{base}...{head}"] if head else ["--merge-base", base]


def changed_files(repo: Path, base: str, head: str | None) -> list[ChangedFile]:
    """Changed ``.py`` files from ``git diff --name-status -M base...head`` (renames followed);
    without ``head``, from the merge base to the working tree."""
    fields = git(repo, "diff", "--name-status", "-M", "-z", *_range(base, head)).split("\0")
    changed: list[ChangedFile] = []
    i = 0
    while i < len(fields) - 1:
        status = fields[i][:1]
        if status in "RC":
            old, new = fields[i + 1], fields[i + 2]
            i += 3
        else:
            old = new = fields[i + 1]
            i += 2
        if new.endswith(".py") or old.endswith(".py"):
            changed.append(ChangedFile(status, new, old))
    return changed


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def hunk_lines(patch: str) -> set[int]:
    """The new-side lines a unified diff's hunks show (added and context lines): the lines a
    pull-request review comment may sit on, with ``side: RIGHT``."""
    lines: set[int] = set()
    line = 0
    in_hunk = False
    for text in patch.splitlines():
        match = _HUNK.match(text)
        if match:
            line, in_hunk = int(match.group(1)), True
            continue
        if not in_hunk or text.startswith("\\"):
            continue
        if text.startswith(("+++", "---")) and not line:
            continue
        if text.startswith("+") or text.startswith(" ") or text == "":
            lines.add(line)
            line += 1
        elif text.startswith("-"):
            continue
        else:
            in_hunk = False  # the next file's header
    return lines


def diff_lines(repo: Path, base: str, head: str | None) -> dict[str, set[int]]:
    """Per changed file (head path), the lines its diff shows."""
    out = git(repo, "diff", "-M", "--no-color", "--no-ext-diff", *_range(base, head))
    per_file: dict[str, set[int]] = {}
    for chunk in re.split(r"^(?=diff --git )", out, flags=re.M):
        target = re.search(r"^\+\+\+ b/(.+)$", chunk, flags=re.M)
        if target:
            per_file[target.group(1)] = hunk_lines(chunk[chunk.index("\n@@") + 1:] if "\n@@" in chunk else "")
    return per_file


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM (a CI runner cancelling the job) unwinds like Ctrl-C does, so ``finally`` runs."""

    def stop(signum, frame):  # noqa: ARG001
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def worktree(repo: Path, ref: str) -> Iterator[Path]:
    """``ref`` checked out (detached) in a temporary worktree, removed on the way out however
    the block ends: an error, Ctrl-C (KeyboardInterrupt) or SIGTERM."""
    folder = Path(tempfile.mkdtemp(prefix=WORKTREE_PREFIX))
    with _terminate_as_exit():
        added = False
        try:
            git(repo, "worktree", "add", "--detach", "--quiet", str(folder), ref)
            added = True
            yield folder
        finally:
            # A second Ctrl-C while cleaning up must not leave the worktree behind.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
            try:
                if added:
                    with contextlib.suppress(GitError):
                        git(repo, "worktree", "remove", "--force", str(folder))
                shutil.rmtree(folder, ignore_errors=True)
                with contextlib.suppress(GitError):
                    git(repo, "worktree", "prune")
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
