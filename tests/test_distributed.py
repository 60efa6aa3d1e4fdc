"""training.distributed: fit through accelerate gives what plain fit gives; accumulation = a larger batch.

One process here (the two-process launch is in test_scaling_out.py); the references are plain
``training.fit`` and a full-batch step computed without accelerate.
"""

import copy

import pytest
import torch
from torch import nn

pytest.importorskip("accelerate")

from transfer_utils import training  # noqa: E402
from transfer_utils.data.loaders import make_loader  # noqa: E402
from transfer_utils.training import distributed  # noqa: E402


def _data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=generator)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2))


def _max_diff(a: nn.Module, b: nn.Module) -> float:
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters()))


def test_fit_through_an_accelerator_matches_plain_fit():
    x, y = _data()
    plain, accelerated = _model(), _model()
    opt = torch.optim.AdamW(plain.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.1, total_iters=8)
    training.fit(plain, make_loader((x, y), 8, shuffle=True, seed=1), opt, epochs=2, scheduler=scheduler,
                 clip_grad_norm=1.0, progress=False)
    opt2 = torch.optim.AdamW(accelerated.parameters(), lr=0.01)
    scheduler2 = torch.optim.lr_scheduler.LinearLR(opt2, 1.0, 0.1, total_iters=8)
    accelerator = distributed.make_accelerator("cpu")
    history = distributed.accelerated_fit(accelerator, accelerated, make_loader((x, y), 8, shuffle=True, seed=1), opt2,
                                          scheduler=scheduler2, epochs=2, clip_grad_norm=1.0, progress=False)
    accelerator.free_memory()
    assert history.steps == 8
    assert _max_diff(plain, _model()) > 1e-3  # it trained
    assert _max_diff(plain, accelerated) < 1e-6


@pytest.mark.parametrize("accumulate", [2, 4])
def test_gradient_accumulation_equals_one_larger_batch(accumulate):
    x, y = _data(16)
    full = _model()
    opt = torch.optim.SGD(full.parameters(), lr=0.5)
    nn.functional.cross_entropy(full(x), y).backward()  # reference: one step on all 16 examples
    opt.step()
    micro = _model()
    accelerator = distributed.make_accelerator("cpu", gradient_accumulation_steps=accumulate)
    history = distributed.accelerated_fit(accelerator, micro, make_loader((x, y), 16 // accumulate),
                                          torch.optim.SGD(micro.parameters(), lr=0.5), epochs=1, progress=False)
    accelerator.free_memory()
    assert history.steps == 1  # one optimizer step from `accumulate` micro-batches
    assert _max_diff(full, _model()) > 1e-2
    assert _max_diff(full, micro) < 1e-6
    # without dividing each micro-batch's loss by the number of micro-batches, the step would be that many times larger
    naive = _model()
    for xb, yb in zip(x.split(16 // accumulate), y.split(16 // accumulate)):
        nn.functional.cross_entropy(naive(xb), yb).backward()
    torch.optim.SGD(naive.parameters(), lr=0.5).step()
    assert _max_diff(full, naive) > 1e-2


def test_resume_through_an_accelerator_continues_the_same_run(tmp_path):
    x, y = _data()

    def run(epochs: int, **kwargs) -> nn.Module:
        model = _model()
        opt = torch.optim.AdamW(model.parameters(), lr=0.01)
        accelerator = distributed.make_accelerator("cpu")
        distributed.accelerated_fit(accelerator, model, make_loader((x, y), 8, shuffle=True, seed=3), opt,
                                    epochs=epochs, monitor="train_loss", restore_best=False, progress=False, **kwargs)
        accelerator.free_memory()
        return model

    straight = run(3)
    run(1, checkpoint_dir=tmp_path)
    resumed = run(3, checkpoint_dir=tmp_path, resume_from=tmp_path)
    assert _max_diff(straight, copy.deepcopy(resumed)) < 1e-6
    assert _max_diff(straight, run(1)) > 1e-3  # the last two epochs did move the weights


def test_launch_configs_are_files_accelerate_reads(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    configs = {"two": distributed.launch_config(2, main_process_port=29555),
               "nodes": distributed.launch_config(16, gpus=True, num_machines=2, machine_rank=1, mixed_precision="bf16",
                                                  main_process_ip="10.0.0.1")}
    for name, config in configs.items():
        path = distributed.write_launch_config(tmp_path / f"{name}.yaml", config, comment="a test\nconfig")
        loaded = load_config_from_file(str(path))
        assert loaded.num_processes == config["num_processes"]
        assert loaded.distributed_type.value == config["distributed_type"]
    assert load_config_from_file(str(tmp_path / "nodes.yaml")).machine_rank == 1
    with pytest.raises(ValueError, match="multiple"):
        distributed.launch_config(3, num_machines=2)


def test_a_failed_launch_says_so_with_its_output():
    import sys

    with pytest.raises(distributed.LaunchError, match="exit code 3.*boom"):
        distributed.launch([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], timeout=60)


def test_a_timeout_stops_the_launcher_and_the_processes_it_started():
    import re
    import sys
    import time
    from pathlib import Path

    spawn = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', 'import time; "
             "time.sleep(60)']); print('child', child.pid, flush=True); time.sleep(60)")
    with pytest.raises(distributed.LaunchError, match="more than 3 s") as failure:
        distributed.launch([sys.executable, "-c", spawn], timeout=3)
    child = int(re.search(r"child (\d+)", str(failure.value)).group(1))
    time.sleep(0.5)
    status = Path(f"/proc/{child}/status")
    state = status.read_text().split("State:")[1].split()[0] if status.exists() else "gone"
    assert state in ("gone", "Z", "X"), f"the launched command's child {child} still runs (state {state})"
