"""Command line: ``cnnlint SPEC... --target t4`` (= ``cnnlint check ...``), ``cnnlint rules``,
``cnnlint rule CODE``, ``cnnlint schema`` (the JSON report's schema), ``cnnlint review --base REF``
(cnnlint.review) and ``cnnlint post REVIEW.json`` (cnnlint.review.post).

Exit codes: 0 no findings at or above --fail-on; 1 findings; 2 usage, config, load or trace error
(the other models are still linted and reported).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from pathlib import Path

import click

from cnnlint import __version__
from cnnlint.core import PRECISIONS
from cnnlint.errors import CnnlintError
from cnnlint.paths import builtin_profile_names
from cnnlint.report import FORMATS
from cnnlint.spec import ModelSpec

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
DEFAULT_TIMEOUT_S = 60.0
SUBCOMMANDS = ("check", "rules", "rule", "schema", "calibrate", "report", "review", "post", "clean")
# Commands that live in their own modules, imported only when they run or --help lists them
# (so a check run does not pay for them): name -> (module, attribute).
LAZY_COMMANDS = {"review": ("cnnlint.review.command", "review"), "post": ("cnnlint.review.post", "post")}
# The cyclic collector's thresholds for a command-line run. Python's (700, 10, 10) start a
# collection after every 700 new container objects; importing torch makes 340k of them and each
# model's meta build, fx graph and LayerGraph hundreds of thousands more, nearly all alive until
# the model is done, so most collections traverse the same live objects again for little to free
# (a sixth of torch's import, a fifth of an 80-model run). Cycles (fx nodes and their graph) are
# still freed, after 50,000 allocations instead of 700. A program using the API keeps its own.
GC_THRESHOLDS = (50_000, 10, 10)


class DefaultToCheck(click.Group):
    """``cnnlint model.py`` means ``cnnlint check model.py``, as in ruff; so ``cnnlint --help``
    shows check's options, then the other commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in SUBCOMMANDS and args[0] not in ("--help", "-h", "--version"):
            args = ["check", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS and name not in self.commands:
            import importlib

            module, attribute = LAZY_COMMANDS[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)

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
    gc.set_threshold(*GC_THRESHOLDS)
    # At exit, every object still alive (torch's modules, the models) is moved out of the cyclic
    # collector's reach, so the interpreter's final collections, 1.5 to 2 s of CPU in a process
    # that imported torch, do not traverse them again only to free memory the process is about to
    # give back. The other exit handlers and finalizers still run; the report is written by then.
    atexit.unregister(gc.freeze)  # once, however often main() runs in one process (tests)
    atexit.register(gc.freeze)


def _split_list(values: tuple[str, ...]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


# --measure and its settings, for check and report (cnnlint.measure, imported only with --measure).
MEASURE_OPTIONS = (
    click.option("--measure", is_flag=True,
                 help="Time each finding's concrete fix against the original layer on this machine "
                      "(real input shape, median of repeats) and add the measured speedup to the finding."),
    click.option("--device", type=click.Choice(["cpu", "cuda"]),
                 help="With --measure: where to time the fixes (default: cpu)."),
    click.option("--measure-budget", type=click.FloatRange(min=0), metavar="SECONDS",
                 help="With --measure: seconds all timings may take together (default 30); findings "
                      "left when it runs out are reported as not measured."),
    click.option("--measure-threads", type=click.IntRange(min=1), metavar="N",
                 help="With --measure on cpu: threads torch may use while timing (default: torch's "
                      "own choice; 1 on a machine busy with other work)."),
)  # fmt: skip


def measure_options(command):
    for option in reversed(MEASURE_OPTIONS):
        command = option(command)
    return command


@main.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--target", "-t", "targets", multiple=True,
              help=f"Target profile: a built-in name ({', '.join(builtin_profile_names())}; any case) "
                   "or a path to a profile .toml. Repeat or comma-separate for several.")
@click.option("--precision", type=click.Choice(PRECISIONS),
              help="Precision to cost and check at (default: the target's).")
@click.option("--input-shape", help="Input shape, e.g. 1,3,224,224; several inputs: 1,3,224,224;1,16.")
@click.option("--input-dtype", help="Element type of the inputs: one for all (int64) or one per "
                                     "input (float32,int64); default float32.")
@click.option("--select", multiple=True,
              help="Rules to run: codes, prefixes (CL3), names, or ALL.")
@click.option("--extend-select", multiple=True,
              help="Rules to add to --select (or to select in [tool.cnnlint]).")
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
@click.option("--cache/--no-cache", "use_cache", default=True, show_default=True,
              help="Answer unchanged files from .cnnlint_cache/ (beside pyproject.toml); "
                   "CNNLINT_NO_CACHE=1 in the environment also turns it off.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path),
              help="Report only the findings not recorded in this baseline file.")
@click.option("--write-baseline", type=click.Path(dir_okay=False, path_type=Path),
              help="Record today's findings in this file, for --baseline; exits 0.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print the one-click fixes (cnnlint.fixes) as a unified diff; change nothing.")
@click.option("--fix", is_flag=True, help="Apply the one-click fixes; they change weight shapes, "
                                          "so only together with --unsafe-fixes.")
@click.option("--unsafe-fixes", is_flag=True, help="Allow --fix to apply fixes that change weight shapes.")
@click.option("--real-run-max-params", type=click.IntRange(min=0),
              help="A model whose own forward() branches on tensor values is run once on CPU "
                   "when it has at most this many parameters (default: each spec's [tool.cnnlint] "
                   "real-run-max-params, else 100,000,000).")
@click.option("--statistics", is_flag=True,
              help="Print the number of findings per rule code and target instead of the report.")
@measure_options
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
def check(specs, targets, precision, input_shape, input_dtype, select, extend_select, ignore, output_format,
          fail_on, color, jobs, timeout, isolate, skip_files_without_models, use_cache, baseline,
          write_baseline, show_diff, fix, unsafe_fixes, real_run_max_params, statistics, measure,
          device, measure_budget, measure_threads, debug) -> None:  # fmt: skip
    """Lint models. SPEC is path/model.py, path/model.py::Name or package.module:attr."""
    from cnnlint import session
    from cnnlint.options import RunOptions, parse_input_dtype, parse_input_shape
    from cnnlint.report import ReportOptions, write_report

    if baseline is not None and write_baseline is not None:
        click.echo("error: give --baseline or --write-baseline, not both (--write-baseline "
                   "rewrites the file from today's findings).", err=True)  # fmt: skip
        sys.exit(EXIT_ERROR)
    _check_measure_options(measure, device, measure_budget, measure_threads)
    if measure:
        # The fixes are built from each finding's traced layer: linted here, one spec at a time
        # (parallel workers would also disturb the timings), never answered from the cache.
        jobs, isolate, use_cache = 1, False, False
    try:
        shapes = parse_input_shape(input_shape) if input_shape is not None else None
        dtypes = parse_input_dtype(input_dtype) if input_dtype is not None else None
        spec_list = _expand_directories([ModelSpec.parse_or_error(text) for text in specs])
    except CnnlintError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)

    # fail-on and the rest of [tool.cnnlint] are resolved per spec (cnnlint.pipeline.resolve).
    options = RunOptions(
        targets=_split_list(targets), precision=precision, select=_split_list(select),
        ignore=_split_list(ignore), input_shapes=shapes, input_dtypes=dtypes, fail_on=fail_on, debug=debug,
        timeout=timeout or None, skip_files_without_models=skip_files_without_models,
        extend_select=_split_list(extend_select),
        real_run_max_params=real_run_max_params,
    )  # fmt: skip
    jobs = jobs or os.cpu_count() or 1
    use_cache = use_cache and not os.environ.get("CNNLINT_NO_CACHE")

    def lint(to_lint: list[ModelSpec]) -> list:
        """The specs the cache could not answer (importing the workers imports no torch yet)."""
        from cnnlint.workers import default_isolation, run

        isolated = default_isolation(len(to_lint)) if isolate is None else isolate
        return run(to_lint, options, jobs=jobs, isolate=isolated, progress=sys.stderr.isatty())

    try:
        results = session.lint(spec_list, options, lint, use_cache, baseline)
        if write_baseline is not None:
            from cnnlint.baseline import write_baseline as record

            count = record(write_baseline, results)
            click.echo(f"cnnlint: recorded {count} findings in {write_baseline}", err=True)
    except CnnlintError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    measured = _measure(results, device, measure_budget, measure_threads) if measure else None
    if show_diff or fix:
        from cnnlint.fixes import run_fixes

        results, edits = run_fixes(results, show_diff, fix and unsafe_fixes, sys.stdout, sys.stderr)
        if show_diff:
            sys.exit(EXIT_ERROR if any(r.status == "error" for r in results) else
                     EXIT_FINDINGS if edits else EXIT_OK)  # fmt: skip
    use_color = sys.stdout.isatty() if color is None else color
    if statistics:
        from cnnlint.report.text_format import write_statistics

        write_statistics(results, sys.stdout)
    else:
        write_report(output_format, results, sys.stdout,
                     ReportOptions(color=use_color and output_format == "text", fail_on=fail_on))
    sys.stdout.flush()
    if measured is not None:
        click.echo(f"cnnlint: {measured}", err=True)

    if any(r.status == "error" for r in results):
        sys.exit(EXIT_ERROR)
    if write_baseline is not None:
        sys.exit(EXIT_OK)  # the findings are recorded, not failed on
    sys.exit(EXIT_FINDINGS if any(r.fails() for r in results) else EXIT_OK)


def _check_measure_options(measure: bool, device: str | None, budget: float | None, threads: int | None) -> None:
    """--device, --measure-budget and --measure-threads need --measure; --device cuda needs a GPU
    (one line, exit 2)."""
    if not measure and (device is not None or budget is not None or threads is not None):
        click.echo("error: --device, --measure-budget and --measure-threads apply to --measure; add --measure.",
                   err=True)  # fmt: skip
        sys.exit(EXIT_ERROR)
    if measure and device == "cuda":
        from cnnlint.timing import check_device

        try:
            check_device(device)
        except CnnlintError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)


def _measure(results: list, device: str | None, budget: float | None, threads: int | None) -> str:
    """Time each finding's fix on this machine (cnnlint.measure); returns the summary line."""
    from cnnlint.measure import DEFAULT_BUDGET_S, measure

    try:
        summary = measure(results, device or "cpu", DEFAULT_BUDGET_S if budget is None else budget, threads)
    except CnnlintError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    return summary.line()


def _expand_directories(specs: list[ModelSpec]) -> list[ModelSpec]:
    """A directory stands for the .py files in it that git would not ignore."""
    expanded: list[ModelSpec] = []
    for spec in specs:
        is_folder = spec.names_many_models and spec.path is not None and spec.path.is_dir()
        if is_folder:
            from cnnlint.discover import python_files  # not imported when no folder is given
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


@main.command()
def schema() -> None:
    """Print the JSON schema of --format json's output (docs/schema/cnnlint-report.schema.json)."""
    from cnnlint.report.contract import json_schema_text

    click.echo(json_schema_text(), nl=False)


@main.command()
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]),
              help="Precision to time and fit (default: fp32; with --from-measurements, the base "
                   "profile's).")
@click.option("--base", help="Profile the result extends (default on cpu: x86-avx512 or x86-avx2 by "
                             "the vector ISA torch uses here, else arm-cpu; t4 on cuda; required "
                             "with --from-measurements).")
@click.option("--quick", is_flag=True, help="A smaller grid: under 20 s on 2 CPU cores.")
@click.option("--grid", type=click.Choice(["full", "quick", "tiny"]), hidden=True,
              help="Internal: the microbenchmark grid (tiny is for tests).")
@click.option("--threads", type=click.IntRange(min=1),
              help="CPU threads torch may use (default: torch's own choice); the same count "
                   "should run the models the profile will predict.")
@click.option("--clock", type=click.Choice(["wall", "process"]), default="wall", show_default=True,
              help="process: this process's CPU time, with --threads 1; on a shared machine it "
                   "leaves out the time the OS gave to other processes.")
@click.option("--passes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Time the grid this many times and take each benchmark's median: on a shared "
                   "machine a burst of load then disturbs one pass, not the fit.")
@click.option("--samples", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every microbenchmark (FLOPs, bytes, measured time) to this CSV; with "
                   "--from-measurements, every row with its fitted and held-out predictions.")
@click.option("--name", help="Profile name (default: the output file's stem).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Profile .toml to write.")
@click.option("--from-measurements", "measurements", type=click.Path(dir_okay=False, exists=True),
              help="Fit to whole-model timings instead of microbenchmarks: a CSV of spec, "
                   "input_shape, batch, ms or throughput, family (docs/measured-truth.md).")
@click.option("--hold-out", "hold_out", multiple=True, metavar="FAMILIES",
              help="With --from-measurements: families (comma-separated) left out of the fit and "
                   "predicted by it, to see how it does on architectures it has not seen.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="With --from-measurements: folds of families for the held-out fit quality.")
@click.option("--eager", is_flag=True,
              help="With --from-measurements: the timings ran in eager PyTorch (nothing fused).")
@click.option("--peak-tflops", "peaks", multiple=True, metavar="PRECISION=TFLOPS",
              help="With --from-measurements: the measured device's peak at a precision, kept "
                   "as given (e.g. fp16=165.2); default: the base profile's.")
@click.option("--bandwidth-gbps", type=click.FloatRange(min=0, min_open=True),
              help="With --from-measurements: the device's memory bandwidth, kept as given.")
@click.option("--spec-source", help="Where --peak-tflops and --bandwidth-gbps come from, for the "
                                    "profile's comments (a datasheet).")
@click.option("--note", "notes", multiple=True,
              help="With --from-measurements: a line for the profile's header (where the timings "
                   "come from).")
@click.option("--description", help="With --from-measurements: the profile's description.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --from-measurements: models linted in parallel.")
def calibrate(device, precision, base, quick, grid, threads, clock, passes, samples, name, output, measurements,
              hold_out, folds, eager, peaks, bandwidth_gbps, spec_source, notes, description, jobs) -> None:
    """Measure this device with microbenchmarks, or fit whole-model timings
    (--from-measurements), and write a profile that extends a built-in one."""
    try:
        import scipy  # noqa: F401
    except ImportError:
        click.echo("error: cnnlint calibrate fits with scipy; install it with "
                   "`pip install 'cnnlint[calibrate]'`.", err=True)  # fmt: skip
        sys.exit(EXIT_ERROR)
    from cnnlint import calibrate as cal

    if measurements is not None:
        _calibrate_from_measurements(measurements, base, precision, name, output, samples, hold_out, folds,
                                     eager, peaks, bandwidth_gbps, spec_source, notes, description, jobs,
                                     device, quick or grid or threads or clock != "wall" or passes != 1)  # fmt: skip
        return
    precision = precision or "fp32"
    grid = grid or ("quick" if quick else "full")
    try:
        cal.check_device(device, precision)
        if sys.stderr.isatty():
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("calibrating", total=1)

                def progress(done: int, total: int, label: str) -> None:
                    bar.update(task, completed=done, total=total, description=label[:40])

                result = cal.calibrate(device, precision, base, grid, progress, threads, clock, passes)
        else:
            result = cal.calibrate(device, precision, base, grid, threads=threads, clock=clock, passes=passes)
        output.write_text(cal.render_profile(result, name or output.stem, output), encoding="utf-8")
        if samples is not None:
            cal.write_samples(result, samples)
    except CnnlintError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    for line in cal.summary_lines(result):
        click.echo(line)
    click.echo(f"wrote {output}")


def _calibrate_from_measurements(path, base, precision, name, output, samples, hold_out, folds, eager, peaks,
                                 bandwidth_gbps, spec_source, notes, description, jobs, device,
                                 microbenchmark_options) -> None:  # fmt: skip
    """``calibrate --from-measurements``: fit whole-model timings (cnnlint.calibrate.model_fit)."""
    from cnnlint import calibrate as cal

    def fail(message: str) -> None:
        click.echo(f"error: {message}", err=True)
        sys.exit(EXIT_ERROR)

    if microbenchmark_options or device != "cpu":
        fail("--from-measurements fits timings already taken: --device, --quick, --threads, --clock and --passes "
             "belong to the microbenchmarks.")  # fmt: skip
    if not base:
        fail("--from-measurements needs --base: the profile whose peak, bandwidth and op table the "
             "fit keeps (a built-in name such as t4, or a .toml path).")  # fmt: skip
    given: dict[str, float] = {}
    for item in peaks:
        key, _, value = item.partition("=")
        try:
            given[key.strip()] = float(value)
        except ValueError:
            fail(f"--peak-tflops {item!r}: write PRECISION=TFLOPS, e.g. fp16=165.2.")
        if given[key.strip()] <= 0:
            fail(f"--peak-tflops {item!r}: the peak must be positive.")
    try:
        result = cal.from_measurements(path, base, precision, eager, _split_list(hold_out), folds, jobs,
                                       given, bandwidth_gbps)  # fmt: skip
        output.write_text(cal.render_measured_profile(result, name or output.stem, output, list(notes),
                                                      description, spec_source), encoding="utf-8")  # fmt: skip
        if samples is not None:
            cal.write_measured_samples(result, samples)
    except CnnlintError as exc:
        fail(str(exc))
    for line in cal.measured_summary_lines(result):
        click.echo(line)
    click.echo(f"wrote {output}")


@main.command()
@click.argument("spec")
@click.option("--target", "-t", default=None,
              help="Target profile: a built-in name or a path to a profile .toml (default: the "
                   "spec's [tool.cnnlint] target, else generic).")
@click.option("--precision", type=click.Choice(PRECISIONS),
              help="Precision to cost and check at (default: the target's).")
@click.option("--input-shape", help="Input shape, e.g. 1,3,224,224.")
@click.option("--input-dtype", help="Element type of the inputs: one for all (int64) or one per "
                                     "input (float32,int64); default float32.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="HTML file to write.")
@click.option("--timeout", type=click.FloatRange(min=0), default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Seconds each model may take to import, build, trace and check (0: no limit).")
@measure_options
def report(spec, target, precision, input_shape, input_dtype, output, timeout, measure, device, measure_budget,
           measure_threads) -> None:  # fmt: skip
    """Write one self-contained HTML report (roofline, latency per layer, findings) for SPEC."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        click.echo("error: cnnlint report draws its plots with matplotlib; install it with "
                   "`pip install 'cnnlint[report]'`.", err=True)  # fmt: skip
        sys.exit(EXIT_ERROR)
    from cnnlint import session
    from cnnlint.options import RunOptions, parse_input_dtype, parse_input_shape
    from cnnlint.report.html_report import ModelReport, render_html
    from cnnlint.workers import run

    _check_measure_options(measure, device, measure_budget, measure_threads)
    try:
        shapes = parse_input_shape(input_shape) if input_shape is not None else None
        dtypes = parse_input_dtype(input_dtype) if input_dtype is not None else None
    except CnnlintError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    # The stages run as for `cnnlint check` (its [tool.cnnlint] settings, models table, time
    # limit and suppressions), in this process and uncached, keeping each model's graph and cost
    # for the plots.
    options = RunOptions(targets=[target] if target else [], precision=precision, input_shapes=shapes,
                         input_dtypes=dtypes, timeout=timeout or None, keep_stages=True)  # fmt: skip
    results = session.lint([ModelSpec.parse_or_error(spec)], options, lambda specs: run(specs, options),
                           use_cache=False)  # fmt: skip
    errors = [r.error or "" for r in results if r.status == "error"]
    reports = [ModelReport(r, *r.stages) for r in results if r.status == "ok"]
    for message in dict.fromkeys(errors):
        click.echo(f"error: {message}", err=True)
    if not reports:
        sys.exit(EXIT_ERROR)
    measured = _measure([r.result for r in reports], device, measure_budget, measure_threads) if measure else None
    output.write_text(render_html(reports, errors, measured), encoding="utf-8")
    if measured is not None:
        click.echo(f"cnnlint: {measured}", err=True)
    findings = sum(len(r.result.findings) for r in reports)
    click.echo(f"wrote {output}: {len(reports)} model(s), {findings} finding(s)")
    sys.exit(EXIT_ERROR if errors else EXIT_OK)


@main.command()
def clean() -> None:
    """Remove the result cache (.cnnlint_cache/ beside the nearest pyproject.toml)."""
    from cnnlint.cache import cache_folder
    from cnnlint.cache import clean as remove

    folder = cache_folder(Path.cwd())
    click.echo(f"cnnlint: {'removed' if remove(folder) else 'no cache at'} {folder}", err=True)
