"""``cnnlint post REVIEW.json``: send a review made by ``cnnlint review --format github-review``.

This is the half of the PR workflow that holds a token, so it runs no code from the pull
request: it reads a JSON file and environment variables, and imports neither torch nor the
pipeline nor any file of the checkout. The other half (``cnnlint review``) runs the PR's code
and holds no token. GitHub recommends this split for pull requests from forks.

Environment: ``GITHUB_TOKEN``, ``GITHUB_REPOSITORY`` (owner/name), ``GITHUB_EVENT_PATH`` (the
event: ``pull_request``, or ``workflow_run`` for the posting workflow), ``GITHUB_API_URL``
(default: GitHub's public API).

The client is PyGithub: its ``GithubRetry`` retries 5xx answers and secondary rate limits with
exponential backoff, a bounded number of times. Each failure becomes one paragraph and exit code
2; the token is scrubbed from every message and traceback. A re-run finds its earlier review by
:data:`MARKER` and updates its body instead of adding another; inline comments already posted
are not posted again.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from cnnlint.review import MARKER

INLINE_MARKER = "<!-- cnnlint:inline -->"  # a follow-up review with only new inline comments
DEFAULT_API_URL = "https://api.github.com"
EXIT_OK, EXIT_ERROR = 0, 2


class PostError(Exception):
    """A failure to tell the user about in one paragraph (already free of the token)."""


@dataclass(frozen=True)
class Target:
    """Where the review goes, from the environment and the event."""

    api_url: str
    token: str
    repository: str  # owner/name
    pull_number: int
    head_sha: str
    trusted_number: bool  # the number came from the event, not from --pr


@dataclass(frozen=True)
class Retries:
    total: int = 3
    backoff: float = 1.0  # seconds; doubles each try (urllib3's backoff_factor)
    secondary_rate_wait: float = 60.0
    timeout: int = 30  # seconds per answer (PyGithub takes whole seconds)
    write_interval: float = 1.0  # GitHub asks for a second between writes


def target_from_env(env: dict[str, str], pr: int | None = None) -> Target:
    token = env.get("GITHUB_TOKEN", "")
    if not token:
        raise PostError("GITHUB_TOKEN is not set: give the posting job `GITHUB_TOKEN: ${{ github.token }}` "
                        "with `pull-requests: write` permission.")  # fmt: skip
    repository = env.get("GITHUB_REPOSITORY", "")
    if repository.count("/") != 1 or not all(repository.split("/")):
        raise PostError(f"GITHUB_REPOSITORY={repository!r}: expected owner/name.")
    event_path = env.get("GITHUB_EVENT_PATH", "")
    if not event_path:
        raise PostError("GITHUB_EVENT_PATH is not set: cnnlint post reads the pull request from the event.")
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PostError(f"GITHUB_EVENT_PATH={event_path}: cannot read the event JSON ({exc}).") from None
    number, sha = None, None
    if isinstance(event.get("pull_request"), dict):  # pull_request, pull_request_target
        number = event["pull_request"].get("number")
        sha = (event["pull_request"].get("head") or {}).get("sha")
    elif isinstance(event.get("workflow_run"), dict):  # the posting workflow
        run = event["workflow_run"]
        sha = run.get("head_sha")
        prs = run.get("pull_requests") or []
        number = prs[0].get("number") if prs else None
    trusted = number is not None
    if number is None:
        number = pr  # a fork's PR is not in workflow_run.pull_requests: the artifact names it
    if number is None or not sha:
        raise PostError(f"{event_path}: no pull request number and head sha in the event; for a "
                        "workflow_run from a fork, pass --pr with the number the lint job "
                        "saved.")  # fmt: skip
    api_url = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    return Target(api_url, token, repository, int(number), str(sha), trusted)


def load_review(path: str) -> dict[str, Any]:
    """The review JSON, checked field by field (it comes from a job that ran the PR's code)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PostError(f"{path}: cannot read the review JSON ({exc}).") from None
    problems = []
    if not isinstance(data, dict):
        raise PostError(f"{path}: expected a JSON object made by `cnnlint review --format github-review`.")
    if not isinstance(data.get("body"), str):
        problems.append("body must be a string")
    if data.get("event") != "COMMENT":
        problems.append('event must be "COMMENT"')
    if not isinstance(data.get("commit_id"), str):
        problems.append("commit_id must be a string")
    comments = data.get("comments", [])
    if not isinstance(comments, list):
        problems.append("comments must be a list")
        comments = []
    for i, c in enumerate(comments):
        ok = (isinstance(c, dict) and set(c) == {"path", "line", "side", "body"}
              and isinstance(c["path"], str) and isinstance(c["line"], int) and c["side"] == "RIGHT"
              and isinstance(c["body"], str))  # fmt: skip
        if not ok:
            problems.append(f"comments[{i}] must have exactly path, line (int), side RIGHT, body")
    extra = set(data) - {"commit_id", "body", "event", "comments"}
    if extra:
        problems.append(f"unexpected fields {sorted(extra)}")
    if problems:
        raise PostError(f"{path}: not a review made by `cnnlint review --format github-review`: "
                        + "; ".join(problems) + ".")  # fmt: skip
    return {"commit_id": data["commit_id"], "body": data["body"], "event": "COMMENT", "comments": comments}


class _Scrubber:
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def _client(target: Target, retries: Retries):
    from github import Auth, Github, GithubRetry

    retry = GithubRetry(total=retries.total, backoff_factor=retries.backoff,
                        secondary_rate_wait=retries.secondary_rate_wait,
                        max_rate_limit_wait=retries.secondary_rate_wait, raise_on_status=False)  # fmt: skip
    return Github(auth=Auth.Token(target.token), base_url=target.api_url, timeout=retries.timeout,
                  retry=retry, lazy=True, seconds_between_requests=None,
                  seconds_between_writes=retries.write_interval or None)  # fmt: skip


def _line_error(exc) -> bool:
    """A 422 about a comment's place: GitHub says the line is not part of the diff."""
    text = json.dumps(getattr(exc, "data", "") or "").lower()
    return any(word in text for word in ("line", "diff", "position", "pull_request_review_thread"))


def _diff_lines(pull) -> dict[str, set[int]]:
    from cnnlint.review.git import hunk_lines  # torch-free: string parsing only

    return {f.filename: hunk_lines(f.patch or "") for f in pull.get_files()}


def _move_to_body(review: dict[str, Any], moved: list[dict[str, Any]]) -> dict[str, Any]:
    if not moved:
        return review
    lines = ["", "### Comments on lines outside the diff", ""]
    for c in moved:
        text = c["body"].replace(MARKER, "").replace(INLINE_MARKER, "").strip()
        lines += [f"**`{c['path']}:{c['line']}`**", "", text, ""]
    kept = [c for c in review["comments"] if c not in moved]
    return {**review, "body": review["body"].rstrip("\n") + "\n" + "\n".join(lines), "comments": kept}


def _create(requester, pull, review: dict[str, Any]) -> dict[str, Any]:
    """POST the review; on a 422 about a comment's line, move the comments GitHub's own diff
    does not show into the body and try once more."""
    from github import GithubException

    try:
        return requester.requestJsonAndCheck("POST", f"{pull.url}/reviews", input=review)[1]
    except GithubException as exc:
        if exc.status != 422 or not review["comments"] or not _line_error(exc):
            raise
    try:
        shown = _diff_lines(pull)
        moved = [c for c in review["comments"] if c["line"] not in shown.get(c["path"], set())]
    except GithubException:
        moved = []
    moved = moved or list(review["comments"])  # GitHub's diff says all fit: move them all
    return requester.requestJsonAndCheck("POST", f"{pull.url}/reviews", input=_move_to_body(review, moved))[1]


def post_review(review: dict[str, Any], target: Target, retries: Retries = Retries()) -> str:
    """Send (or update) the review; returns a line saying what was done."""
    gh = _client(target, retries)
    requester = gh.requester
    pull = gh.get_repo(target.repository).get_pull(target.pull_number)
    if not target.trusted_number and pull.head.sha != target.head_sha:
        raise PostError(f"pull request #{target.pull_number} has head {pull.head.sha[:12]}, but the "
                        f"event's run was for {target.head_sha[:12]}: not posting.")  # fmt: skip
    if review["commit_id"] != target.head_sha:
        raise PostError(f"the review is for commit {review['commit_id'][:12]}, the event for "
                        f"{target.head_sha[:12]}: not posting a review of another commit.")  # fmt: skip
    earlier = [r for r in pull.get_reviews() if MARKER in (r.body or "")]
    if not earlier:
        _create(requester, pull, review)
        return f"posted a review on #{target.pull_number} with {len(review['comments'])} inline comment(s)"
    summary = earlier[-1]
    requester.requestJsonAndCheck("PUT", f"{pull.url}/reviews/{summary.id}", input={"body": review["body"]})
    posted = {(c.path, c.line, c.body.strip())
              for c in pull.get_review_comments() if MARKER in (c.body or "")}  # fmt: skip
    fresh = [c for c in review["comments"] if (c["path"], c["line"], c["body"].strip()) not in posted]
    if fresh:
        follow_up = {"commit_id": review["commit_id"], "event": "COMMENT", "comments": fresh,
                     "body": f"{INLINE_MARKER}\ncnnlint: {len(fresh)} new inline comment(s) for "
                             f"{review['commit_id'][:7]}; the summary above is updated."}  # fmt: skip
        _create(requester, pull, follow_up)
    return (f"updated review {summary.id} on #{target.pull_number}; {len(fresh)} new inline "
            "comment(s)")  # fmt: skip


_HINTS = {
    401: "GitHub rejected the token (401 Bad credentials): GITHUB_TOKEN is wrong or expired.",
    403: "GitHub refused (403 Forbidden): the token needs `pull-requests: write`, or the rate limit "
         "was still exceeded after the retries.",
    404: "GitHub answered 404 Not Found: the repository {repo}, pull request #{pr} or the review does "
         "not exist, or the token cannot see it.",
    422: "GitHub refused the review (422 Unprocessable Entity)",
}


def explain(exc: BaseException, target: Target | None, retries: Retries) -> str:
    """One paragraph for a failure of the HTTP exchange (not yet scrubbed)."""
    import requests
    from github import GithubException

    repo = target.repository if target else "?"
    pr = target.pull_number if target else "?"
    if isinstance(exc, GithubException):
        status = exc.status
        message = exc.data.get("message", "") if isinstance(exc.data, dict) else str(exc.data or "")
        if status in _HINTS:
            hint = _HINTS[status].format(repo=repo, pr=pr)
            return f"{hint}: {message}" if status == 422 else f"{hint} ({message})" if message else hint
        if status is not None and status >= 500:
            return (f"GitHub answered {status} for {repo} #{pr}, still after {retries.total} retries "
                    f"with backoff: {message or 'server error'}. Try again later.")  # fmt: skip
        return f"GitHub answered {status}: {message or exc}"
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
        return (f"no answer from {target.api_url if target else 'GitHub'} within {retries.timeout:g} s "
                f"({retries.total} retries): the request timed out.")  # fmt: skip
    if isinstance(exc, requests.exceptions.RetryError):
        return (f"GitHub kept answering with server errors for {repo} #{pr} after {retries.total} "
                "retries with backoff. Try again later.")  # fmt: skip
    if isinstance(exc, requests.exceptions.ConnectionError):
        return (f"cannot connect to {target.api_url if target else 'GitHub'}: {exc.__class__.__name__} "
                "(connection refused or no network). Check GITHUB_API_URL.")  # fmt: skip
    return f"cnnlint post failed: {type(exc).__name__}: {exc}"


@click.command()
@click.argument("review_file", metavar="REVIEW.json", type=click.Path(dir_okay=False))
@click.option("--pr", type=int, help="Pull request number, when the event does not carry it (a "
                                     "workflow_run from a fork); checked against the event's head sha.")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Retries of a 5xx answer, a secondary rate limit or a timeout, with backoff.")
@click.option("--backoff", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="First backoff in seconds; it doubles each retry.")
@click.option("--timeout", type=click.IntRange(min=1), default=30, show_default=True,
              help="Seconds to wait for each answer.")
@click.option("--debug", is_flag=True, help="Show the traceback of a failure (the token scrubbed).")
def post(review_file: str, pr: int | None, retries: int, backoff: float, timeout: int, debug: bool) -> None:
    """Post a review made by `cnnlint review --format github-review` to the pull request."""
    scrub = _Scrubber(os.environ.get("GITHUB_TOKEN", ""))
    policy = Retries(total=retries, backoff=backoff, secondary_rate_wait=max(backoff, 1.0) * 60,
                     timeout=timeout, write_interval=min(1.0, backoff))  # fmt: skip
    target = None
    try:
        import github  # noqa: F401
    except ImportError:
        _fail(scrub, "cnnlint post needs PyGithub: pip install 'cnnlint[github]'.", None, False)
    try:
        target = target_from_env(dict(os.environ), pr)
        review = load_review(review_file)
        click.echo(scrub(post_review(review, target, policy)))
    except PostError as exc:
        _fail(scrub, str(exc), exc, debug)
    except Exception as exc:  # noqa: BLE001 - every failure is a paragraph and exit 2
        _fail(scrub, explain(exc, target, policy), exc, debug)
    sys.exit(EXIT_OK)


def _fail(scrub: _Scrubber, message: str, exc: BaseException | None, debug: bool) -> None:
    if debug and exc is not None:
        sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
    click.echo(f"error: {scrub(message)}", err=True)
    sys.exit(EXIT_ERROR)
