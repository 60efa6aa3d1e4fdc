"""Lesson 12's runs: a real two-process launch on CPU agrees with one process; accumulation = a larger batch.

The launch starts two CPU processes (gloo) with ``accelerate launch`` and checks that there were two
(world size and operating-system process ids) and that, without dropout, their step losses and test
predictions are those of the same job run here in one process. About half a minute on 2 cores.
"""

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate")

from transfer_utils import fine_tuning, scaling, training  # noqa: E402
from transfer_utils.models.pretrained import load_text_classifier  # noqa: E402
from transfer_utils.training import distributed  # noqa: E402

PLAN = scaling.ScalingPlan(jobs=[scaling.ScalingJob("exact", seed=0, n_train=32, dropout=False)], batch_size=8,
                           max_length=32, n_test=48, threads=1)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scaling")
    config = distributed.write_launch_config(folder / "two.yaml",
                                             distributed.launch_config(2, main_process_port=distributed.free_port()))
    return scaling.run_launched(config, PLAN, folder, "two", timeout=300)


def test_two_processes_start_and_agree_with_one(two_process_run):
    assert two_process_run["world_size"] == 2
    assert two_process_run["distributed_type"] == "MULTI_CPU" and two_process_run["backend"] == "gloo"
    assert len({p["pid"] for p in two_process_run["processes"]}) == 2
    assert [p["threads"] for p in two_process_run["processes"]] == [1, 1]
    two = two_process_run["jobs"][0]
    one = scaling.run_job(distributed.make_accelerator("cpu"), PLAN, PLAN.jobs[0], scaling.load_task(PLAN))
    assert one["processes"] == 1 and two["processes"] == 2
    assert two["steps"] == one["steps"] == 4  # the same number of optimizer steps: each process gets half a batch
    np.testing.assert_allclose(two["step_losses"], one["step_losses"], atol=1e-4)
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= 1 / 48 + 1e-9  # at most one borderline snippet
    assert two["n_test"] == one["n_test"] == 48  # gather_for_metrics dropped the padding examples


def test_a_config_asking_for_multi_cpu_starts_one_process(tmp_path):
    """accelerate 1.15 hands MULTI_CPU to mpirun; without it the script runs once (why the lesson checks)."""
    config = distributed.write_launch_config(tmp_path / "multi_cpu.yaml", distributed.launch_config(
        2, distributed_type="MULTI_CPU", main_process_port=distributed.free_port()))
    probe = scaling.run_launched(config, None, tmp_path, "probe", timeout=120)
    assert probe["world_size"] == 1 and len(probe["processes"]) == 1


def test_accumulated_micro_batches_take_the_large_batch_step_on_minilm():
    """Two micro-batches of 4 accumulated through accelerate = one batch of 8 (plain fit), same weights."""
    task = scaling.load_task(dataclasses.replace(PLAN, n_test=8))
    data = fine_tuning.TokenizedTexts(task.train_x[:8], task.train_y[:8], task.tokenizer, 32)

    def stepped(micro: int, accumulate: int) -> torch.nn.Module:
        torch.manual_seed(0)
        _, model = load_text_classifier("minilm", num_labels=2, **scaling.NO_DROPOUT)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = fine_tuning.text_loader(data, task.tokenizer, micro, shuffle=False, group_by_length=False)
        if accumulate == 1:
            training.fit(model, loader, optimizer, max_steps=1, progress=False)
        else:
            accelerator = distributed.make_accelerator("cpu", gradient_accumulation_steps=accumulate)
            assert distributed.accelerated_fit(accelerator, model, loader, optimizer, max_steps=1,
                                               progress=False).steps == 1
            accelerator.free_memory()
            distributed.make_accelerator("cpu")  # back to no accumulation for the other tests
        return model

    big, accumulated = stepped(8, 1), stepped(4, 2)
    torch.manual_seed(0)
    start = load_text_classifier("minilm", num_labels=2, **scaling.NO_DROPOUT)[1]
    diff = max(float((p - q).detach().abs().max()) for p, q in zip(big.parameters(), accumulated.parameters()))
    moved = max(float((p - q).detach().abs().max()) for p, q in zip(big.parameters(), start.parameters()))
    assert moved > 1e-4 and diff < 1e-3 * moved
