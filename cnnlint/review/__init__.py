"""``cnnlint review``: what a pull request changes in its models, target by target.

    git.py      changed files, diff lines, a temporary worktree that is always removed
    compare.py  lint base and head, pair models (renames followed), classify findings
    render.py   markdown, GitHub's create-a-review JSON, JSON
    command.py  the click command
    post.py     ``cnnlint post``: sends a review made by ``cnnlint review``

post.py holds the token, so it imports nothing from here but the marker and the diff-hunk
parser of git.py (and never torch, the pipeline or the other modules above).
"""

# Starts every body cnnlint writes to a pull request, so a re-run finds its own review.
MARKER = "<!-- cnnlint -->"
