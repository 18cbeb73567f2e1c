"""The ``cnnlint review`` command. Imports click only; the work is imported when it runs."""

from __future__ import annotations

import sys

import click

EXIT_OK, EXIT_NEW, EXIT_ERROR = 0, 1, 2


@click.command()
@click.option("--base", required=True,
              help="The revision the pull request merges into (a branch, tag or sha).")
@click.option("--head", help="The revision to review (default: the working tree).")
@click.option("--target", "-t", "targets", multiple=True,
              help="Target profile; repeat or comma-separate for several (default: each file's config).")
@click.option("--format", "output_format", type=click.Choice(["markdown", "github-review", "json"]),
              default="markdown", show_default=True,
              help="markdown: a PR comment; github-review: the JSON body of GitHub's create-a-review "
                   "endpoint (for `cnnlint post`); json: every model and finding, classified.")
@click.option("--fail-on-new", type=click.Choice(["error", "warning", "info", "never"]), default="never",
              show_default=True,
              help="Exit 1 when a new finding is at or above this severity (or a model that linted at "
                   "base no longer lints); other findings never change the exit code.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write the review to this file instead of standard output.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Lint this many files at a time.")
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds each model may take (0: no limit).")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
def review(base, head, targets, output_format, fail_on_new, output, jobs, timeout,
           debug) -> None:  # fmt: skip
    """Compare a pull request's models with its base: new, fixed and unchanged findings, and the
    cost change on each target."""
    from cnnlint.errors import CnnlintError
    from cnnlint.options import RunOptions
    from cnnlint.review.compare import review as run_review
    from cnnlint.review.render import FORMATS

    split = [t.strip() for value in targets for t in value.split(",") if t.strip()]
    options = RunOptions(targets=split, debug=debug, timeout=timeout or None)
    try:
        result = run_review(base, head, options, jobs=jobs)
    except CnnlintError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    text = FORMATS[output_format](result)
    if output:
        with open(output, "w", encoding="utf-8") as stream:
            stream.write(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.exit(EXIT_NEW if result.fails(fail_on_new) else EXIT_OK)
