"""Run many independent model fits on every core, with a progress bar.

Resampling (bootstrap, jackknife, approximate Bayesian imputation) and power simulation repeat one fit
hundreds of times. :func:`parallel_map` hands chunks of tasks to a process pool whose workers receive
the shared data once (``initializer``), keeps the results in task order and shows a rich progress bar.
With one worker, or little work, everything runs in this process (no start-up cost).

Workers are forked where the platform allows it (Linux): a spawned worker re-runs the caller's script,
which breaks scripts without an ``if __name__ == "__main__"`` guard, the way analysts often write them.
Every worker is forked before the progress bar starts its thread, and runs one BLAS thread.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

__all__ = ["available_cores", "parallel_map", "show_progress"]


def available_cores() -> int:
    """Cores this process may use (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def show_progress(progress: bool | None) -> bool:
    """``progress`` or, when None, whether someone is watching (a terminal or a notebook)."""
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def _resolve_jobs(n_jobs: int | None, n_tasks: int) -> int:
    if n_jobs is None or n_jobs == 0:
        n_jobs = available_cores()
    elif n_jobs < 0:
        n_jobs = max(1, available_cores() + 1 + n_jobs)
    return max(1, min(int(n_jobs), n_tasks))


_WORKER_STATE: dict[str, Any] = {}


def _init_worker(initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    from toolkit.stats._blas import limit_blas_threads

    limit_blas_threads(1)  # the pool already occupies every core
    _WORKER_STATE["shared"] = initializer(*initargs) if initializer is not None else None


def _run_chunk(fn: Callable[[Any, Any], Any], chunk: Sequence[Any]) -> list[Any]:
    shared = _WORKER_STATE.get("shared")
    return [fn(shared, task) for task in chunk]


def parallel_map(
    fn: Callable[[Any, Any], Any],
    tasks: Sequence[Any],
    *,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple = (),
    n_jobs: int | None = None,
    progress: bool | None = None,
    description: str = "working",
    chunk_size: int | None = None,
) -> list[Any]:
    """``[fn(shared, task) for task in tasks]`` on ``n_jobs`` processes, results in task order.

    Parameters
    ----------
    fn : callable
        Module-level function ``fn(shared, task)`` (picklable); ``shared`` is what ``initializer``
        returned in that worker.
    tasks : sequence
        Small picklable task descriptions (indices, seeds).
    initializer, initargs
        ``initializer(*initargs)`` builds the shared state once per worker (and once here when run
        serially); put the large arrays there rather than in every task.
    n_jobs : int, optional
        Worker processes: None or 0 for every available core, negative to leave cores free, 1 to run
        here.
    progress : bool, optional
        Show a progress bar (default: when a terminal or notebook is attached).
    description : str
        Label of the progress bar.
    chunk_size : int, optional
        Tasks per job sent to a worker (default: about four chunks per worker).
    """
    tasks = list(tasks)
    jobs = _resolve_jobs(n_jobs, len(tasks))
    shown = show_progress(progress)
    if jobs == 1:
        with _Bar(shown, description, len(tasks)) as bar:
            shared = initializer(*initargs) if initializer is not None else None
            out = []
            for task in tasks:
                out.append(fn(shared, task))
                bar.advance(1)
            return out
    size = chunk_size or max(1, -(-len(tasks) // (4 * jobs)))
    chunks = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    results: list[list[Any] | None] = [None] * len(chunks)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context(method),
        initializer=_init_worker,
        initargs=(initializer, initargs),
    ) as pool:
        # every worker starts at a submit: submit all before the progress bar starts its thread
        futures = {pool.submit(_run_chunk, fn, chunk): i for i, chunk in enumerate(chunks)}
        with _Bar(shown, description, len(tasks)) as bar:
            for future in as_completed(futures):
                index = futures[future]
                results[index] = future.result()
                bar.advance(len(chunks[index]))
    return [item for chunk in results for item in (chunk or [])]


class _Bar:
    """A rich progress bar that does nothing when not shown."""

    def __init__(self, shown: bool, description: str, total: int) -> None:
        self.shown = shown
        self.description = description
        self.total = total
        self._progress = None
        self._task = None

    def __enter__(self) -> _Bar:
        if self.shown:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
