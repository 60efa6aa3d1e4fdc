"""The course's training loop on one or several processes, through Hugging Face ``accelerate``.

``accelerate`` hides what differs between a CPU, one GPU, several GPUs and several machines: it starts
the processes (``accelerate launch``), wraps the model for data parallelism (DDP: every process holds
the whole model, gets its own share of each batch, and averages the gradients with the others before
each step), places batches on the right device, and runs mixed precision and gradient accumulation.
``fit`` needs no other code: ``accelerated_fit`` prepares the objects and hands ``fit`` the accelerator.

    make_accelerator     an ``Accelerator`` that splits each loader batch between the processes
    accelerated_fit      ``training.fit`` through an accelerator (prepare, then the same loop)
    recording_step       a step that also records every micro-batch's loss
    mean_over_processes  per-step losses averaged over the processes (the loss of the whole batch)
    gathered_predict     logits and labels of a loader scored by all processes together
    allreduce_seconds    what averaging a tensor across the processes costs
    launch_config / write_launch_config / launch_command / launch   config files and ``accelerate launch``

Lessons: 12.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from transfer_utils.training.loop import History, Step, StepOutput, fit, logits_of, supervised_step
from transfer_utils.training.modes import eval_mode


def make_accelerator(device: str = "cpu", mixed_precision: str | None = None,
                     gradient_accumulation_steps: int = 1) -> Any:
    """An ``Accelerator`` on ``device`` ("cpu" or "auto") that splits every loader batch between the processes.

    ``split_batches=True``: a loader of batch size B gives each of N processes B / N examples, so the
    batch an optimizer step sees (and the number of steps, and the schedule) is the same for any N.
    ``mixed_precision`` None takes the launcher's setting (a config file's ``mixed_precision``).
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    if device not in ("cpu", "auto"):
        raise ValueError(f"device must be 'cpu' or 'auto' (the launcher's devices), got {device!r}")
    return Accelerator(cpu=device == "cpu", mixed_precision=mixed_precision,
                       gradient_accumulation_steps=gradient_accumulation_steps,
                       dataloader_config=DataLoaderConfiguration(split_batches=True))


def accelerated_fit(accelerator: Any, model: nn.Module, train_loader: Iterable, optimizer: torch.optim.Optimizer, *,
                    scheduler: Any = None, **fit_kwargs: Any) -> History:
    """``training.fit`` on every process: prepare model, optimizer, loader and schedule, then the same loop.

    Evaluation loaders in ``fit_kwargs`` stay unprepared: every process scores all of them (the
    same weights give the same early-stopping decisions everywhere). ``model`` is trained in place.
    """
    prepared = accelerator.prepare(model, optimizer, train_loader, *([scheduler] if scheduler is not None else []))
    wrapped, optimizer, train_loader = prepared[:3]
    scheduler = prepared[3] if scheduler is not None else None
    return fit(wrapped, train_loader, optimizer, scheduler=scheduler, accelerator=accelerator, **fit_kwargs)


def recording_step(losses: list[float], clock: list[float] | None = None, step: Step = supervised_step) -> Step:
    """``step`` that also appends each micro-batch's loss (this process's share) to ``losses``.

    With ``clock``, it also appends the time each micro-batch starts (``time.perf_counter()``).
    """

    def record(model: nn.Module, batch: Any) -> StepOutput:
        if clock is not None:
            clock.append(time.perf_counter())
        out = step(model, batch)
        losses.append(float(out.loss.detach()))
        return out

    return record


def mean_over_processes(accelerator: Any, values: Sequence[float]) -> list[float]:
    """Position-wise mean of ``values`` over the processes: the whole batch's loss when shares are equal."""
    mine = torch.tensor(list(values), dtype=torch.float64, device=accelerator.device)
    every = accelerator.gather(mine).reshape(accelerator.num_processes, -1)
    return every.mean(dim=0).cpu().tolist()


@torch.no_grad()
def gathered_predict(accelerator: Any, model: nn.Module, loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels for every example of ``loader``, each process scoring its share of each batch."""
    prepared = accelerator.prepare_data_loader(loader)
    logits, labels = [], []
    with eval_mode(model):
        for batch in prepared:
            inputs = {k: v for k, v in batch.items() if k not in ("labels", "weights")}
            # gather_for_metrics drops the examples repeated to give every process an equal share
            logits.append(accelerator.gather_for_metrics(logits_of(model(**inputs)).float()).cpu())
            labels.append(accelerator.gather_for_metrics(batch["labels"]).cpu())
    return torch.cat(logits), torch.cat(labels)


def allreduce_seconds(accelerator: Any, numel: int, repeats: int = 3) -> float:
    """Median seconds to average a float32 tensor of ``numel`` numbers over the processes (0 for one process)."""
    if accelerator.num_processes == 1:
        return 0.0
    tensor = torch.ones(numel, device=accelerator.device)
    accelerator.reduce(tensor, "mean")  # warm-up: the first call sets up buffers
    times = []
    for _ in range(repeats):
        accelerator.wait_for_everyone()
        started = time.perf_counter()
        accelerator.reduce(tensor, "mean")
        times.append(time.perf_counter() - started)
    return float(sorted(times)[len(times) // 2])


# --- launching: config files and ``accelerate launch`` ---------------------------------------------------

def free_port() -> int:
    """A TCP port that is free now on this machine (for the processes' rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch_config(num_processes: int, *, gpus: bool = False, mixed_precision: str = "no", num_machines: int = 1,
                  machine_rank: int = 0, main_process_ip: str = "127.0.0.1", main_process_port: int = 29500,
                  distributed_type: str | None = None) -> dict[str, Any]:
    """The fields of an ``accelerate launch --config_file`` YAML for ``num_processes`` processes in total.

    Several local processes start through accelerate's torchrun launcher, which its config files call
    ``MULTI_GPU``; with ``gpus=False`` the script asks for the CPU (``make_accelerator("cpu")``) and the
    processes talk over gloo. (``MULTI_CPU`` starts several processes only through ``mpirun``.)
    """
    if num_processes < 1 or num_machines < 1 or num_processes % num_machines:
        raise ValueError(f"need num_processes ({num_processes}) to be a multiple of num_machines ({num_machines})")
    if distributed_type is None:
        distributed_type = "MULTI_GPU" if num_processes > 1 else "NO"
    config: dict[str, Any] = {"compute_environment": "LOCAL_MACHINE", "distributed_type": distributed_type,
                              "num_processes": num_processes, "num_machines": num_machines,
                              "machine_rank": machine_rank, "mixed_precision": mixed_precision,
                              "use_cpu": not gpus, "gpu_ids": "all", "main_training_function": "main",
                              "rdzv_backend": "static", "same_network": True, "dynamo_config": {}}
    if num_processes > 1:
        config.update(main_process_ip=main_process_ip, main_process_port=main_process_port)
    return config


def write_launch_config(path: str | Path, config: dict[str, Any], comment: str = "") -> Path:
    """Write ``config`` as the YAML ``accelerate launch --config_file`` reads (after a ``#`` comment)."""
    import yaml

    from transfer_utils.core.storage import atomic_write_text

    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return atomic_write_text(path, header + yaml.safe_dump(config, sort_keys=False))


def launch_command(config_file: str | Path, module: str, args: Sequence[str] = ()) -> list[str]:
    """``accelerate launch --config_file FILE -m MODULE ARGS...`` with this Python (the same environment)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file), "-m", module,
            *map(str, args)]


def _text(output: str | bytes | None) -> str:
    """Captured output as text, whatever form ``subprocess`` left it in."""
    return output.decode(errors="replace") if isinstance(output, bytes) else (output or "")


class LaunchError(RuntimeError):
    """A launched run that failed or ran out of time; the message ends with its output."""


def launch(command: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
           log: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run ``command``; raise ``LaunchError`` with the end of its output if it fails or exceeds ``timeout`` s.

    The command runs in a process group of its own, so a timeout stops the processes it started too.
    """
    started = time.perf_counter()
    process = subprocess.Popen(list(map(str, command)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the launcher and every process it started
        stdout, stderr = process.communicate()
        raise LaunchError(f"the launched run took more than {timeout:.0f} s and was stopped: "
                          f"{' '.join(map(str, command))}\n{(_text(stdout) + _text(stderr))[-3000:]}") from None
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if log is not None:
        Path(log).write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise LaunchError(f"the launched run failed (exit code {done.returncode}) after "
                          f"{time.perf_counter() - started:.0f} s: {' '.join(map(str, command))}\n"
                          f"{(done.stdout + done.stderr)[-3000:]}")
    return done


__all__ = ["make_accelerator", "accelerated_fit", "recording_step", "mean_over_processes", "gathered_predict",
           "allreduce_seconds", "free_port", "launch_config", "write_launch_config", "launch_command", "launch",
           "LaunchError"]
