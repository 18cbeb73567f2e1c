"""Command line: ``cnnlint SPEC... --target t4`` (= ``cnnlint check ...``), ``cnnlint rules``,
``cnnlint rule CODE``.

Exit codes: 0 no findings at or above --fail-on; 1 findings; 2 usage, config, load or trace error
(the other models are still linted and reported).
"""

from __future__ import annotations

import os
import sys

import click

from cnnlint import __version__
from cnnlint.errors import CnnlintError
from cnnlint.paths import builtin_profile_names
from cnnlint.report import FORMATS
from cnnlint.spec import ModelSpec

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
DEFAULT_TIMEOUT_S = 60.0
SUBCOMMANDS = ("check", "rules", "rule")


class DefaultToCheck(click.Group):
    """``cnnlint model.py`` means ``cnnlint check model.py``, as in ruff; so ``cnnlint --help``
    shows check's options, then the other commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in SUBCOMMANDS and args[0] not in ("--help", "-h", "--version"):
            args = ["check", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] SPEC...")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="       ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        check_command = self.commands["check"]
        check_ctx = click.Context(check_command, info_name="check", parent=ctx)
        records = [r for p in check_command.get_params(check_ctx) if isinstance(p, click.Option)
                   and (r := p.get_help_record(check_ctx)) is not None]  # fmt: skip
        records += [r for p in self.get_params(ctx) if (r := p.get_help_record(ctx)) is not None
                    and not r[0].startswith("-h")]  # fmt: skip
        with formatter.section("Options"):
            formatter.write_dl(records)
        self.format_commands(ctx, formatter)


@click.group(cls=DefaultToCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cnnlint")
def main() -> None:
    """Lint PyTorch CNN definitions against the hardware they will run on.

    SPEC is path/model.py, path/model.py::Name, package.module:attr, or a directory.
    """


def _split_list(values: tuple[str, ...]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@main.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--target", "-t", "targets", multiple=True,
              help=f"Target profile: a built-in name ({', '.join(builtin_profile_names())}; any case) "
                   "or a path to a profile .toml. Repeat or comma-separate for several.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]),
              help="Precision to cost and check at (default: the target's).")
@click.option("--input-shape", help="Input shape, e.g. 1,3,224,224; several inputs: 1,3,224,224;1,16.")
@click.option("--select", multiple=True, help="Rules to run: codes, prefixes (CL3) or names.")
@click.option("--ignore", multiple=True, help="Rules to skip: codes, prefixes or names.")
@click.option("--format", "output_format", type=click.Choice(list(FORMATS)), default="text",
              show_default=True,
              help="Report format: " + "; ".join(f"{name}: {f.help}" for name, f in FORMATS.items()) + ".")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info", "never"]),
              help="Lowest severity that makes the exit code 1 (default: each spec's "
                   "[tool.cnnlint] fail-on, else warning).")
@click.option("--color/--no-color", default=None, help="Colour the text report (default: if a TTY).")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=1, show_default=True,
              help="Lint this many specs at a time, in worker processes (0: one per CPU).")
@click.option("--timeout", type=click.FloatRange(min=0), default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Seconds each model may take to import, build, trace and check (0: no limit).")
@click.option("--isolate/--no-isolate", default=None,
              help="Run each spec in a worker process, so a model that exits, crashes or hangs "
                   "the interpreter costs only its own result (default: on when linting several "
                   "specs under pre-commit or CI).")
@click.option("--skip-files-without-models", is_flag=True,
              help="Pass over .py files that define no model instead of reporting an error, as "
                   "for files found in a directory (the pre-commit hook sets this).")
@click.option("--statistics", is_flag=True,
              help="Print the number of findings per rule code and target instead of the report.")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
def check(specs, targets, precision, input_shape, select, ignore, output_format, fail_on, color,
          jobs, timeout, isolate, skip_files_without_models, statistics, debug) -> None:  # fmt: skip
    """Lint models. SPEC is path/model.py, path/model.py::Name or package.module:attr."""
    from cnnlint.config import parse_input_shape
    from cnnlint.pipeline import RunOptions
    from cnnlint.report import ReportOptions, write_report
    from cnnlint.workers import default_isolation, run

    try:
        shapes = parse_input_shape(input_shape) if input_shape is not None else None
        spec_list = _expand_directories([ModelSpec.parse(text) for text in specs])
    except CnnlintError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)

    # fail-on and the rest of [tool.cnnlint] are resolved per spec (cnnlint.pipeline.resolve).
    options = RunOptions(
        targets=_split_list(targets), precision=precision, select=_split_list(select),
        ignore=_split_list(ignore), input_shapes=shapes, fail_on=fail_on, debug=debug,
        timeout=timeout or None, skip_files_without_models=skip_files_without_models,
    )  # fmt: skip
    jobs = jobs or os.cpu_count() or 1
    isolate = default_isolation(len(spec_list)) if isolate is None else isolate
    results = run(spec_list, options, jobs=jobs, isolate=isolate, progress=sys.stderr.isatty())
    use_color = sys.stdout.isatty() if color is None else color
    if statistics:
        from cnnlint.report.text_format import write_statistics

        write_statistics(results, sys.stdout)
    else:
        write_report(output_format, results, sys.stdout,
                     ReportOptions(color=use_color and output_format == "text", fail_on=fail_on))
    sys.stdout.flush()

    if any(r.status == "error" for r in results):
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if any(r.fails() for r in results) else EXIT_OK)


def _expand_directories(specs: list[ModelSpec]) -> list[ModelSpec]:
    """A directory stands for the .py files in it that git would not ignore."""
    from cnnlint.discover import python_files

    expanded: list[ModelSpec] = []
    for spec in specs:
        is_folder = spec.names_many_models and spec.path is not None and spec.path.is_dir()
        files = python_files(spec.path) if is_folder else []
        expanded.extend([ModelSpec.found_file(f) for f in files] or [spec])
    return expanded


@main.command()
@click.option("--format", "output_format", type=click.Choice(["table", "markdown"]), default="table",
              show_default=True, help="markdown: the rule reference, as in docs/rules.md.")
def rules(output_format: str) -> None:
    """List every rule: code, name, and its severity on each built-in target."""
    if output_format == "markdown":
        from cnnlint.docs import render_markdown

        try:
            click.echo(render_markdown(), nl=False)
        except CnnlintError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        return
    from rich.console import Console
    from rich.table import Table

    from cnnlint.check import all_rules, settings_for
    from cnnlint.profile import builtin_profile_names, load_profile

    try:
        profiles = [load_profile(name) for name in builtin_profile_names()]
        table = Table(title="cnnlint rules (severity per target; - = off)")
        table.add_column("code")
        table.add_column("name")
        for profile in profiles:
            table.add_column(profile.name)
        for rule in all_rules():
            cells = []
            for profile in profiles:
                settings = settings_for(rule, profile)
                cells.append(settings.severity if settings.enabled else "-")
            table.add_row(rule.code, rule.name, *cells)
    except CnnlintError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


@main.command()
@click.argument("code")
def rule(code: str) -> None:
    """Show a rule's documentation (CODE or name)."""
    from cnnlint.check import find_rule

    try:
        found = find_rule(code)
    except CnnlintError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"{found.code} {found.name} (default severity: {found.severity})\n")
    from cnnlint.docs import rule_text

    click.echo(rule_text(found))
