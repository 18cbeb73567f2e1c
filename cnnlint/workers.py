"""Running the pipeline over many specs: in this process, or in worker processes.

``--jobs N`` lints N specs at a time in worker processes; ``--isolate`` runs every spec in a worker
even with one job, so that a model that calls ``os._exit``, crashes the interpreter (a segfault in
native code) or hangs where no signal reaches it costs only its own result. The workers are forked
after torch is imported, so each starts in milliseconds and shares the parent's memory.

A worker tells the parent which model it is about to import, build or trace, and hands over each
model's results as soon as they exist. When a worker dies or overruns its time, the parent records
an error for the model it was on, starts a fresh worker, and that worker lints the rest of the
spec. Results come back in spec order, then model order, whatever the number of jobs.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait

from cnnlint.options import RunOptions
from cnnlint.pipeline import lint_spec, spec_error
from cnnlint.results import ModelResult
from cnnlint.spec import ModelSpec
from cnnlint.watch import Running, Watch

# A worker gets this long past --timeout to stop itself (SIGALRM) before the parent kills it.
KILL_GRACE_S = 5.0
_TICK_S = 0.25  # how often the parent wakes to refresh progress and check deadlines


@dataclass
class _Task:
    index: int
    spec: ModelSpec
    done: frozenset[str] = frozenset()  # models already reported
    skip: frozenset[str] = frozenset()  # models a worker died on: not built again


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    task: _Task | None = None
    current: Running | None = None  # what the worker said it is running
    deadline: float | None = None
    reported: list[str] = field(default_factory=list)


class Progress:
    """A rich progress bar on stderr; silent when stderr is not a terminal or there is one spec."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        if enabled and total > 1:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            # No refresh thread: workers are forked from this process, and a thread holding the
            # console lock at fork time would deadlock the child.
            self._bar = RichProgress(
                TextColumn("[bold]cnnlint"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True), auto_refresh=False, transient=True,
            )  # fmt: skip
            self._task = self._bar.add_task("", total=total)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, description: str | None = None, advance: int = 0) -> None:
        if self._bar is not None:
            if description is not None:
                self._bar.update(self._task, description=description[-60:])
            self._bar.update(self._task, advance=advance)
            self._bar.refresh()


def run(
    specs: list[ModelSpec], options: RunOptions, jobs: int = 1, isolate: bool = False,
    progress: bool = False,
) -> list[ModelResult]:  # fmt: skip
    """Lint every spec; in worker processes when ``jobs > 1`` or ``isolate``."""
    with Progress(len(specs), progress) as bar:
        if jobs <= 1 and not isolate:
            results: list[ModelResult] = []
            for spec in specs:
                bar.update(spec.display)
                results.extend(lint_spec(spec, options))
                bar.update(advance=1)
            return results
        return _Pool(specs, options, max(1, jobs), bar).run()


# ---------------------------------------------------------------------------- worker side
def _worker_main(conn: Connection, options: RunOptions) -> None:
    # stdout belongs to the parent's report: whatever user code prints, even from C, goes to stderr.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    # A forked child of a process whose torch already ran a parallel op (the API in a program that
    # uses torch, a test session) hangs in its first OpenMP region: OpenMP is not fork-safe. One
    # intra-op thread keeps the real CPU runs out of OpenMP, as torch's own DataLoader workers do.
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    while True:
        task: _Task | None = conn.recv()
        if task is None:
            return
        watch = Watch(options.timeout, on_begin=lambda running: conn.send(("begin", running)))
        streamed = 0

        def hand_over(results: list[ModelResult]) -> None:
            nonlocal streamed
            streamed += len(results)
            conn.send(("results", [_portable(r) for r in results]))

        results = lint_spec(task.spec, options, watch, task.done, task.skip, hand_over)
        if results[streamed:]:  # errors of the spec as a whole are returned, not streamed
            conn.send(("results", [_portable(r) for r in results[streamed:]]))
        conn.send(("end", None))


def _portable(result: ModelResult) -> ModelResult:
    """Findings without their Layer objects: reports need only the location, and pickling the
    graph nodes would cost more than the lint."""
    return replace(result, findings=[replace(f, layer=None) for f in result.findings])


# ---------------------------------------------------------------------------- parent side
def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class _Pool:
    def __init__(self, specs: list[ModelSpec], options: RunOptions, jobs: int, bar: Progress) -> None:
        self.options, self.bar = options, bar
        self.pending: deque[_Task] = deque(_Task(i, spec) for i, spec in enumerate(specs))
        self.results: list[list[ModelResult]] = [[] for _ in specs]
        self.jobs = min(jobs, len(specs))
        self.workers: list[_Worker] = []
        self.context = _context()
        if self.context.get_start_method() == "fork":
            _preload(specs)

    def run(self) -> list[ModelResult]:
        try:
            self.workers = [self._start() for _ in range(self.jobs)]
            while self.pending or any(w.task for w in self.workers):
                for worker in self.workers:
                    if worker.task is None and self.pending:
                        self._assign(worker, self.pending.popleft())
                ready = wait([w.conn for w in self.workers if w.task], timeout=_TICK_S)
                for worker in list(self.workers):
                    if worker.task is None:
                        continue
                    if worker.conn in ready:
                        self._receive(worker)
                    elif worker.deadline is not None and time.monotonic() > worker.deadline:
                        self._replace(worker, self._timeout_message(worker))
        finally:
            for worker in self.workers:
                with contextlib.suppress(OSError, BrokenPipeError):
                    worker.conn.send(None)
                worker.process.join(timeout=1)
                if worker.process.is_alive():
                    worker.process.kill()
        return [result for spec_results in self.results for result in spec_results]

    def _start(self) -> _Worker:
        parent_end, child_end = self.context.Pipe()
        process = self.context.Process(target=_worker_main, args=(child_end, self.options), daemon=True)
        process.start()
        child_end.close()
        return _Worker(process, parent_end)

    def _assign(self, worker: _Worker, task: _Task) -> None:
        worker.task, worker.current, worker.reported = task, None, []
        worker.deadline = self._deadline()  # reading the config and profiles counts too
        worker.conn.send(task)
        self.bar.update(task.spec.display)

    def _deadline(self) -> float | None:
        if not self.options.timeout:
            return None
        return time.monotonic() + self.options.timeout + KILL_GRACE_S

    def _receive(self, worker: _Worker) -> None:
        assert worker.task is not None
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            self._replace(worker, self._death_message(worker))
            return
        if kind == "begin":
            worker.current, worker.deadline = payload, self._deadline()
            self.bar.update(payload.name)
        elif kind == "results":
            self.results[worker.task.index].extend(payload)
            worker.reported.extend(r.model for r in payload)
        elif kind == "end":
            worker.task, worker.current, worker.deadline = None, None, None
            self.bar.update(advance=1)

    def _replace(self, worker: _Worker, message: str) -> None:
        """The worker died or overran: record the error, start a new one for the rest of the spec."""
        task = worker.task
        assert task is not None
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)
        worker.conn.close()
        current = worker.current
        importing = current is not None and current.importing
        culprit = current.name if current is not None else task.spec.display
        self.results[task.index].extend(
            spec_error(task.spec.display if importing else culprit, self.options, message)
        )
        done = task.done | set(worker.reported)
        if not importing and culprit not in task.skip and task.spec.names_many_models:
            # The rest of the spec still gets linted, without the model that killed the worker.
            self.pending.appendleft(replace(task, done=frozenset(done),
                                            skip=task.skip | {culprit}))  # fmt: skip
        else:
            self.bar.update(advance=1)
        self.workers[self.workers.index(worker)] = self._start()

    def _where(self, worker: _Worker) -> str:
        current = worker.current
        if current is None:
            return "starting"
        return f"importing {current.name}" if current.importing else "building or tracing it"

    def _name(self, worker: _Worker) -> str:
        assert worker.task is not None
        return worker.current.name if worker.current is not None else worker.task.spec.display

    def _death_message(self, worker: _Worker) -> str:
        code = worker.process.exitcode
        name = self._name(worker)
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
            cause = "a crash in native code (e.g. a segfault in an extension)"
        else:
            how = f"exited with status {code}"
            cause = "os._exit() or a native library ending the process"
        return (
            f"{name}: the process linting it {how} while {self._where(worker)}: {cause}. "
            "cnnlint ran it in an isolated worker, so the other models were still linted; run "
            "this model alone to debug it."
        )

    def _timeout_message(self, worker: _Worker) -> str:
        name = self._name(worker)
        return (
            f"{name}: did not finish within {self.options.timeout:g} s while "
            f"{self._where(worker)} and did not respond to the stop signal (stuck in native "
            "code?); its worker was killed. Fix the loop, or give it longer with --timeout."
        )


def _shared_library_modules(specs: list[ModelSpec]) -> list[str]:
    """Import specs' modules that lie in installed packages and that several specs name
    (``torchvision.models:resnet50 torchvision.models:vgg16 ...``): imported once before forking,
    not once per worker. The user's own modules are imported only in workers."""
    from cnnlint.frames import is_package_file

    counts = Counter(spec.module for spec in specs if spec.module and spec.error is None)
    shared = []
    for module, count in counts.items():
        try:
            found = importlib.util.find_spec(module.partition(".")[0])
        except (ImportError, ValueError):
            continue
        if count > 1 and found is not None and found.origin and is_package_file(found.origin):
            shared.append(module)
    return shared


def _preload(specs: list[ModelSpec]) -> None:
    """Import the heavy parts once, before forking, so every worker shares them.

    Tracing one tiny model also pays torch.fx's lazy imports and caches here (about 0.5 s), not
    once per worker and not inside the first model's time limit. A library module that fails to
    import here fails again, and is reported, in the worker that lints it.
    """
    for module in _shared_library_modules(specs):
        # What it prints goes where the workers' output goes (stderr), not into the report.
        with contextlib.suppress(Exception), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(module)

    import torch
    from torch import nn

    from cnnlint.check import all_rules
    from cnnlint.graph.build import build_layer_graph
    from cnnlint.load import LoadedModel
    from cnnlint.trace import trace

    all_rules()
    with torch.device("meta"):
        tiny = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
    build_layer_graph(trace(LoadedModel("warm-up", tiny, [(1, 3, 8, 8)], {}, "meta")))


def default_isolation(spec_count: int) -> bool:
    """Isolate by default when several specs are linted unattended (pre-commit or CI)."""
    unattended = bool(os.environ.get("PRE_COMMIT")) or os.environ.get("CI", "").lower() in (
        "1", "true", "yes",
    )  # fmt: skip
    return spec_count > 1 and unattended

