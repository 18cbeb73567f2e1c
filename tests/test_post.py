"""`cnnlint post` against a real HTTP server on 127.0.0.1 standing in for GitHub's REST API.

The server keeps a pull request's reviews, review comments and file patches, records every
request, checks the method, path, auth header and payload, and answers with whatever error a
test queues: 401, 403, 404, 422, 5xx, a secondary rate limit, or no answer in time.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from cnnlint.cli import main
from cnnlint.review.post import INLINE_MARKER, MARKER

TOKEN = "ghs_cnnlintTestToken_9f3a7c1e5b"  # distinctive: a leak anywhere is easy to find
OWNER, REPO, NUMBER = "octo", "nets", 7
HEAD = "a" * 40
PULL = f"/repos/{OWNER}/{REPO}/pulls/{NUMBER}"
PATCH = "@@ -1,3 +1,5 @@\n import torch\n+from torch import nn\n \n+x = 1\n y = 2\n"  # new lines 1-5


class FakeGitHub:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.reviews: list[dict] = []
        self.review_comments: list[dict] = []
        self.files = [{"filename": "net.py", "patch": PATCH, "status": "modified"}]
        self.errors: list[tuple[str, str, int, dict, dict]] = []  # method, path, status, body, headers
        self.delay = 0.0
        self.problems: list[str] = []  # what the server found wrong in a request

    def fail(self, method: str, path: str, status: int, body: dict | None = None,
             headers: dict | None = None, times: int = 1) -> None:  # fmt: skip
        for _ in range(times):
            self.errors.append((method, path, status, body or {"message": "error"}, headers or {}))

    def posted(self) -> list[dict]:
        return [r["json"] for r in self.requests if r["method"] == "POST"]

    def handle(self, method: str, path: str, payload) -> tuple[int, object, dict]:
        for i, (m, p, status, body, headers) in enumerate(self.errors):
            if m == method and p == path:
                del self.errors[i]
                return status, body, headers
        if method == "GET" and path == PULL:
            return 200, {"number": NUMBER, "url": f"{self.url}{PULL}", "head": {"sha": HEAD}}, {}
        if method == "GET" and path == f"{PULL}/reviews":
            return 200, self.reviews, {}
        if method == "GET" and path == f"{PULL}/comments":
            return 200, self.review_comments, {}
        if method == "GET" and path == f"{PULL}/files":
            return 200, self.files, {}
        if method == "POST" and path == f"{PULL}/reviews":
            return self._create(payload)
        match = re.fullmatch(rf"{PULL}/reviews/(\d+)", path)
        if method == "PUT" and match:
            for review in self.reviews:
                if review["id"] == int(match.group(1)):
                    if set(payload) != {"body"}:
                        self.problems.append(f"PUT payload {payload}")
                    review["body"] = payload["body"]
                    return 200, review, {}
        return 404, {"message": "Not Found"}, {}

    def _create(self, payload) -> tuple[int, object, dict]:
        if set(payload) != {"commit_id", "body", "event", "comments"} or payload["event"] != "COMMENT":
            self.problems.append(f"POST payload keys {sorted(payload)}")
        shown = {1, 2, 3, 4, 5}
        for c in payload["comments"]:
            if set(c) != {"path", "line", "side", "body"} or c["side"] != "RIGHT":
                self.problems.append(f"comment {c}")
            if c["path"] != "net.py" or c["line"] not in shown:
                # What GitHub answers for a comment on a line outside the diff.
                return 422, {"message": "Unprocessable Entity",
                             "errors": ["Line could not be resolved"]}, {}  # fmt: skip
        review = {"id": 100 + len(self.reviews), "body": payload["body"], "commit_id": payload["commit_id"],
                  "user": {"login": "github-actions[bot]"}, "state": "COMMENTED"}  # fmt: skip
        self.reviews.append(review)
        for c in payload["comments"]:
            self.review_comments.append({**c, "id": 500 + len(self.review_comments)})
        return 200, review, {}


@pytest.fixture
def github():
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            payload = json.loads(raw) if raw else None
            path = self.path.split("?")[0]
            fake.requests.append({"method": self.command, "path": path, "json": payload,
                                  "auth": self.headers.get("Authorization")})  # fmt: skip
            if self.headers.get("Authorization") != f"token {TOKEN}":
                fake.problems.append(f"auth header {self.headers.get('Authorization')!r}")
            if fake.delay:
                time.sleep(fake.delay)
            status, body, headers = fake.handle(self.command, path, payload)
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

        do_GET = do_POST = do_PUT = do_PATCH = _serve

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    assert not fake.problems, fake.problems


def comment(line: int, text: str = "CL301 here") -> dict:
    return {"path": "net.py", "line": line, "side": "RIGHT", "body": f"{MARKER}\n{text}\n"}


@pytest.fixture
def files(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": NUMBER, "head": {"sha": HEAD}}}))

    def review(*comments: dict, body: str = "summary") -> Path:
        path = tmp_path / "review.json"
        path.write_text(json.dumps({"commit_id": HEAD, "body": f"{MARKER}\n## cnnlint review\n{body}\n",
                                    "event": "COMMENT", "comments": list(comments)}))  # fmt: skip
        return path

    return event, review


def env_for(github: FakeGitHub, event: Path, **extra: str) -> dict[str, str]:
    return {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": f"{OWNER}/{REPO}",
            "GITHUB_EVENT_PATH": str(event), "GITHUB_API_URL": github.url, **extra}  # fmt: skip


def post(github, event, review: Path, *args: str):
    fast = ["--backoff", "0.01", "--retries", "2", "--timeout", "5"]
    return CliRunner().invoke(main, ["post", str(review), *fast, *args], env=env_for(github, event))


def test_posts_a_review(github, files):
    event, review = files
    done = post(github, event, review(comment(2), comment(4, "CL201 here")))
    assert done.exit_code == 0, done.output
    assert "posted a review on #7 with 2 inline comment(s)" in done.output
    (sent,) = github.posted()
    assert sent == json.loads(review(comment(2), comment(4, "CL201 here")).read_text())
    sent_to = [r["method"] + " " + r["path"] for r in github.requests]
    assert sent_to == [f"GET {PULL}/reviews", f"POST {PULL}/reviews"]
    assert all(r["auth"] == f"token {TOKEN}" for r in github.requests)


def test_a_rerun_updates_its_review_instead_of_adding_one(github, files):
    event, review = files
    assert post(github, event, review(comment(2))).exit_code == 0
    again = post(github, event, review(comment(2), body="second run"))
    assert again.exit_code == 0, again.output
    assert len(github.reviews) == 1 and "second run" in github.reviews[0]["body"]
    assert [r["method"] for r in github.requests].count("POST") == 1  # the same comment: not again
    third = post(github, event, review(comment(2), comment(3, "new one"), body="third run"))
    assert third.exit_code == 0, third.output
    follow_up = github.posted()[-1]
    assert [c["line"] for c in follow_up["comments"]] == [3] and INLINE_MARKER in follow_up["body"]
    assert MARKER not in follow_up["body"] and "third run" in github.reviews[0]["body"]


def test_a_comment_outside_the_diff_moves_into_the_body(github, files):
    event, review = files
    done = post(github, event, review(comment(2), comment(40, "far away")))
    assert done.exit_code == 0, done.output
    first, second = github.posted()
    assert [c["line"] for c in first["comments"]] == [2, 40]
    assert [c["line"] for c in second["comments"]] == [2]
    assert "`net.py:40`" in second["body"] and "far away" in second["body"]
    assert f"GET {PULL}/files" in [r["method"] + " " + r["path"] for r in github.requests]


def test_a_5xx_and_a_secondary_rate_limit_are_retried(github, files):
    event, review = files
    github.fail("POST", f"{PULL}/reviews", 502)
    github.fail("POST", f"{PULL}/reviews", 403,
                {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
                {"Retry-After": "1"})  # fmt: skip
    done = post(github, event, review(comment(2)))
    assert done.exit_code == 0, done.output
    assert len(github.posted()) == 3 and len(github.reviews) == 1


ERRORS = {
    401: ({"message": "Bad credentials"}, "rejected the token (401"),
    403: ({"message": "Resource not accessible by integration"}, "403 Forbidden"),
    404: ({"message": "Not Found"}, "404 Not Found: the repository octo/nets, pull request #7"),
    422: ({"message": "Validation Failed", "errors": [{"code": "invalid"}]}, "refused the review (422"),
    500: ({"message": "Server Error"}, "answered 500 for octo/nets #7, still after 2 retries"),
    503: ({"message": "Unavailable"}, "answered 503"),
}


@pytest.mark.parametrize("status", sorted(ERRORS))
@pytest.mark.parametrize("debug", [False, True])
def test_http_errors_are_one_paragraph_and_exit_2(github, files, status, debug):
    event, review = files
    body, expected = ERRORS[status]
    github.fail("POST", f"{PULL}/reviews", status, body, times=10)
    if status == 404:
        github.fail("GET", f"{PULL}/reviews", 404, body)
    done = post(github, event, review(comment(2)), *(["--debug"] if debug else []))
    assert done.exit_code == 2
    assert expected in done.output and TOKEN not in done.output
    assert ("Traceback" in done.output) == debug
    if status >= 500:
        assert len(github.posted()) == 3  # the first try and --retries 2
    elif status != 404:
        assert len(github.posted()) == 1


@pytest.mark.parametrize("debug", [False, True])
def test_a_timeout_is_reported(github, files, debug):
    event, review = files
    github.delay = 3.0
    runner = CliRunner()
    done = runner.invoke(main, ["post", str(review(comment(2))), "--timeout", "1", "--retries", "0",
                                *(["--debug"] if debug else [])], env=env_for(github, event))  # fmt: skip
    assert done.exit_code == 2 and "timed out" in done.output and TOKEN not in done.output


@pytest.mark.parametrize("debug", [False, True])
def test_connection_refused_is_reported(files, tmp_path, debug):
    event, review = files
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": f"{OWNER}/{REPO}", "GITHUB_EVENT_PATH": str(event),
           "GITHUB_API_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    done = CliRunner().invoke(main, ["post", str(review(comment(2))), "--retries", "0",
                                     *(["--debug"] if debug else [])], env=env)  # fmt: skip
    assert done.exit_code == 2 and f"cannot connect to http://127.0.0.1:{port}" in done.output
    assert TOKEN not in done.output


@pytest.mark.parametrize("broken", ["token", "repository", "event", "review"])
def test_bad_setup_is_one_paragraph(github, files, tmp_path, broken):
    event, review = files
    path = review(comment(2))
    env = env_for(github, event)
    if broken == "token":
        env["GITHUB_TOKEN"] = ""
    elif broken == "repository":
        env["GITHUB_REPOSITORY"] = "not-a-repo"
    elif broken == "event":
        event.write_text(json.dumps({"push": {}}))
    else:
        path.write_text(json.dumps({"commit_id": HEAD, "body": "x", "event": "APPROVE", "comments": []}))
    done = CliRunner().invoke(main, ["post", str(path)], env=env)
    assert done.exit_code == 2 and done.output.startswith("error: ") and "Traceback" not in done.output
    assert TOKEN not in done.output and github.posted() == []


def test_a_fork_pr_number_is_checked_against_the_event(github, tmp_path, files):
    _, review = files
    event = tmp_path / "run.json"
    event.write_text(json.dumps({"workflow_run": {"head_sha": HEAD, "pull_requests": []}}))
    ok = CliRunner().invoke(main, ["post", str(review(comment(2))), "--pr", "7", "--backoff", "0"],
                            env=env_for(github, event))  # fmt: skip
    assert ok.exit_code == 0, ok.output
    event.write_text(json.dumps({"workflow_run": {"head_sha": "b" * 40, "pull_requests": []}}))
    forged = CliRunner().invoke(main, ["post", str(review(comment(2))), "--pr", "7"],
                                env=env_for(github, event))  # fmt: skip
    assert forged.exit_code == 2 and "not posting" in forged.output and len(github.posted()) == 1


def test_post_imports_neither_torch_nor_the_pull_requests_code(github, files, tmp_path):
    event, review = files
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "model.py").write_text(
        "import pathlib\npathlib.Path('IMPORTED').write_text('yes')\nraise RuntimeError('PR code ran')\n")
    path = review(comment(2))
    probe = (
        "import sys\nfrom cnnlint.cli import main\n"
        "try:\n    main(['post', sys.argv[1], '--backoff', '0'])\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "print('torch' in sys.modules, 'cnnlint.pipeline' in sys.modules, code)\n"
    )
    env = {**os.environ, **env_for(github, event)}
    done = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "False False 0", done.stdout + done.stderr
    assert not (checkout / "IMPORTED").exists() and len(github.reviews) == 1
    assert TOKEN not in done.stdout + done.stderr


def test_the_workflows_are_least_privilege():
    yaml = pytest.importorskip("yaml")
    root = Path(__file__).parents[1]
    review = yaml.safe_load((root / "examples/github/cnnlint-review.yml").read_text())
    post_flow = yaml.safe_load((root / "examples/github/cnnlint-post.yml").read_text())
    action = yaml.safe_load((root / "action.yml").read_text())
    # PyYAML reads the key `on` as True.
    assert review[True] == {"pull_request": {"paths": ["**.py", "pyproject.toml"]}}
    assert review["permissions"] == {"contents": "read"} and "secrets." not in json.dumps(review)
    (lint,) = review["jobs"].values()
    assert "permissions" not in lint and "env" not in lint
    assert post_flow[True]["workflow_run"]["workflows"] == [review["name"]]
    assert post_flow["permissions"] == {}
    (job,) = post_flow["jobs"].values()
    assert job["permissions"] == {"pull-requests": "write", "actions": "read"}
    uses = [step.get("uses", "") for step in job["steps"]]
    assert not any(u.startswith("actions/checkout") for u in uses)  # no PR code in the token job
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step  # inputs reach scripts through env only
