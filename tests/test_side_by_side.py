"""Runs side by side give the same results, in the same order, as running them one after another."""

import pytest
import torch

from transfer_utils.training.side_by_side import run_side_by_side


def _make_trainer():
    """A seeded training run, defined in a closure so that it is pickled by value (as in a notebook)."""

    def train(seed: int, steps: int) -> tuple[int, torch.Tensor]:
        torch.manual_seed(seed)
        model = torch.nn.Linear(8, 3)
        x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        return torch.get_num_threads(), model.weight.detach()

    return train


def test_side_by_side_matches_one_after_another_in_job_order():
    train = _make_trainer()
    jobs = [(seed, 30) for seed in (3, 1, 2, 0)]
    side = run_side_by_side(train, jobs, workers=2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the workers' setting, for an exact comparison
        alone = [train(*job) for job in jobs]
    finally:
        torch.set_num_threads(threads)
    assert [t for t, _ in side] == [1, 1, 1, 1]  # each worker trains on one thread
    for (_, w_side), (_, w_alone) in zip(side, alone):
        assert torch.equal(w_side, w_alone)
    # different seeds give different weights, so the order check above is not vacuous
    assert not torch.equal(side[0][1], side[1][1])


def test_one_worker_or_a_gpu_runs_in_this_process():
    calls = []
    assert run_side_by_side(lambda a, b: calls.append(a) or a + b, [(1, 2), (3, 4)], workers=1) == [3, 7]
    assert calls == [1, 3]  # the lambda ran here: a worker process could not append to this list
    calls.clear()
    assert run_side_by_side(lambda a: calls.append(a) or a, [(5,)], workers=2, device="cuda") == [5]
    assert calls == [5]


def test_no_jobs_is_an_error():
    with pytest.raises(ValueError, match="jobs must not be empty"):
        run_side_by_side(print, [], workers=2)
