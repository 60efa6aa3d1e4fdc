"""Independent training runs side by side: one process and one torch thread per run.

A small network (lesson 05's `DigitCNN`) cannot keep two cores busy with one step at a time: its
convolutions are too small to split, so the second thread mostly waits for the first. Running two
*runs* at once, each on its own core, finishes a grid of methods × seeds sooner. Every run seeds
itself, so the results do not depend on which worker ran it or in what order. Even MiniLM's steps
leave the second thread partly idle: two fine-tuning runs side by side, one thread each, train two
models in 1.2 to 1.5 times the wall-clock time of one run on two threads (bench/fine_tuning_settings.py
averages such a pair's predictions).

    run_side_by_side      ``[fn(*job) for job in jobs]``, one process and one thread per job

Lessons: 04, 05, 08; bench/fine_tuning_settings.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from joblib import Parallel, delayed
from tqdm.auto import tqdm


def _on_one_thread(fn: Callable[..., Any], job: tuple) -> Any:
    """``fn(*job)`` with torch limited to one thread (the worker's share of the cores)."""
    torch.set_num_threads(1)
    return fn(*job)


def run_side_by_side(fn: Callable[..., Any], jobs: Iterable[Sequence[Any]], workers: int | None = None,
                     device: torch.device | str = "cpu", desc: str | None = None) -> list[Any]:
    """``[fn(*job) for job in jobs]``, computed by up to ``workers`` processes (default: torch's threads).

    On a GPU, or with one worker, the jobs run one after another in this process. ``fn`` and its
    arguments are pickled to the workers, so ``fn`` must not rely on state that only this process has
    (open files, a CUDA context); functions defined in a notebook work.
    """
    jobs = [tuple(job) for job in jobs]
    workers = min(workers or torch.get_num_threads(), len(jobs))
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers}) and jobs must not be empty")
    progress = tqdm(total=len(jobs), desc=desc, disable=desc is None)
    if workers == 1 or torch.device(device).type != "cpu":
        results = []
        for job in jobs:
            results.append(fn(*job))
            progress.update()
    else:
        results = []
        # max_nbytes=None: arrays travel pickled, not as read-only memory maps that torch warns about
        running = Parallel(n_jobs=workers, backend="loky", return_as="generator", max_nbytes=None)
        for result in running(delayed(_on_one_thread)(fn, job) for job in jobs):
            results.append(result)
            progress.update()
    progress.close()
    return results
