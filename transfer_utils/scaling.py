"""Fine-tuning the text model on one or several processes with the same code: lesson 12's runs.

``run_job`` fine-tunes MiniLM on critic snippets through ``training.distributed.accelerated_fit`` and
scores the test snippets; it runs inside a notebook (one process) or under ``accelerate launch``:

    python -m accelerate.commands.launch --config_file RUN/cpu_2_processes.yaml \\
        -m transfer_utils.scaling --plan RUN/plan.json --out RUN/results.json

where every process runs every job of the plan and the main process writes the results (JSON,
atomically). ``--probe`` only reports how many processes the launcher started.

    ScalingJob / ScalingPlan   what to run (one plan per launch; jobs share the loaded data)
    run_job                    one fine-tuning run: step losses, seconds per step, test accuracy
    run_launched               write a plan, launch it with a timeout, read its results back

Lessons: 12.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from transfer_utils.core.storage import atomic_torch_save, atomic_write_json
from transfer_utils.training import distributed

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


@dataclass
class ScalingJob:
    """One fine-tuning run of a plan."""

    name: str
    seed: int = 0  # the new head's weights, dropout and the data order
    n_train: int = 640  # the first n of the plan's training snippets
    epochs: int = 1  # the length the learning-rate schedule is built for
    stop_after_epochs: int = 0  # 0: train all epochs; k: stop after k (a run cut short, to resume later)
    dropout: bool = True  # False: no dropout, so runs that compute the same thing give the same numbers
    checkpoint_dir: str = ""  # "": no checkpoints; else latest.pt after every epoch
    resume_from: str = ""  # a checkpoint folder to continue from
    fingerprint: str = ""  # "": none; else a .pt file with the first numbers of every weight tensor


@dataclass
class ScalingPlan:
    """The jobs of one launch and what they share."""

    jobs: list[ScalingJob] = field(default_factory=list)
    model_name: str = "minilm"
    batch_size: int = 16  # examples per optimizer step, split between the processes
    max_length: int = 64  # tokens kept per snippet
    lr: float = 1e-4
    warmup_ratio: float = 0.1
    n_test: int = 400
    threads: int = 1  # torch threads per process: cores / processes, or they fight over the cores
    device: str = "cpu"  # "cpu", or "auto" for the launcher's GPUs
    data_seed: int = 0  # which training and test snippets are used
    allreduce_numel: int = 0  # > 0: also time averaging this many float32 numbers across the processes

    def to_json(self) -> dict[str, Any]:
        """The plan as plain JSON values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "ScalingPlan":
        """The plan ``to_json`` wrote."""
        return cls(**{**values, "jobs": [ScalingJob(**job) for job in values["jobs"]]})


@dataclass
class Task:
    """The tokenizer and the snippets every job of a plan uses."""

    tokenizer: Any
    train_x: list[str]
    train_y: np.ndarray
    test: Any  # fine_tuning.TokenizedTexts


def load_task(plan: ScalingPlan) -> Task:
    """Training snippets in a fixed shuffled order (a job takes the first n) and a fixed sample of test snippets.

    The order depends on ``data_seed`` only, so a job sees the same snippets in every plan (a resumed
    run in a later launch trains on what the first launch did).
    """
    from transfer_utils import fine_tuning
    from transfer_utils.data import datasets
    from transfer_utils.models.pretrained import load_tokenizer

    snippets = datasets.load_rotten_tomatoes()
    n_train = max(job.n_train for job in plan.jobs)
    train = snippets.train.take(np.random.default_rng(plan.data_seed).permutation(len(snippets.train))[:n_train])
    test = datasets.sample_n(snippets.test, plan.n_test, seed=plan.data_seed)
    tokenizer = load_tokenizer(plan.model_name)
    return Task(tokenizer, list(train.x), np.asarray(train.y),
                fine_tuning.TokenizedTexts(test.x, test.y, tokenizer, plan.max_length))


def weight_fingerprint(model: torch.nn.Module, numbers: int = 512) -> dict[str, torch.Tensor]:
    """The first ``numbers`` values of every weight tensor: enough to tell two trained models apart."""
    return {name: p.detach().flatten()[:numbers].float().cpu().clone() for name, p in model.named_parameters()}


def run_job(accelerator: Any, plan: ScalingPlan, job: ScalingJob, task: Task) -> dict[str, Any]:
    """Fine-tune as ``job`` says on this accelerator's processes; losses, timing and test accuracy."""
    from transfer_utils import fine_tuning
    from transfer_utils.models.pretrained import load_text_classifier

    torch.manual_seed(job.seed)  # the same new head on every process and for any number of processes
    _, model = load_text_classifier(plan.model_name, num_labels=2, **({} if job.dropout else NO_DROPOUT))
    config = fine_tuning.FineTuneConfig(lr=plan.lr, batch_size=plan.batch_size, epochs=job.epochs,
                                        warmup_ratio=plan.warmup_ratio, max_length=plan.max_length, seed=job.seed)
    train = config.tokenize(task.train_x[:job.n_train], task.train_y[:job.n_train], task.tokenizer)
    loader = fine_tuning.text_loader(train, task.tokenizer, config.batch_size, shuffle=True, seed=job.seed)
    optimizer = torch.optim.AdamW(fine_tuning.decay_parameter_groups(model, config.weight_decay), lr=config.lr,
                                  fused=True)
    scheduler = fine_tuning.warmup_linear_schedule(optimizer, config.warmup_steps(len(train)),
                                                   config.total_steps(len(train)))
    losses: list[float] = []
    clock: list[float] = []
    accelerator.wait_for_everyone()
    started = time.perf_counter()
    history = distributed.accelerated_fit(
        accelerator, model, loader, optimizer, scheduler=scheduler, epochs=job.stop_after_epochs or job.epochs,
        step=distributed.recording_step(losses, clock), clip_grad_norm=config.clip_grad_norm, monitor="train_loss",
        checkpoint_dir=job.checkpoint_dir or None, resume_from=job.resume_from or None, restore_best=False,
        progress=False)
    accelerator.wait_for_everyone()
    seconds = time.perf_counter() - started
    logits, labels = distributed.gathered_predict(
        accelerator, model, fine_tuning.text_loader(task.test, task.tokenizer, config.eval_batch_size))
    accuracy = float((logits.argmax(dim=-1) == labels).float().mean())
    if job.fingerprint and accelerator.is_main_process:
        atomic_torch_save(job.fingerprint, weight_fingerprint(model))
    result = {"name": job.name, "seed": job.seed, "processes": accelerator.num_processes,
              "mixed_precision": str(accelerator.mixed_precision), "steps": history.steps,
              "train_seconds": seconds, "seconds_per_step": seconds / max(history.steps, 1),
              # the median time between consecutive steps: leaves out the first step's warm-up
              "median_step_seconds": float(np.median(np.diff(clock))) if len(clock) > 1 else seconds,
              "step_losses": distributed.mean_over_processes(accelerator, losses),
              "test_accuracy": accuracy, "n_test": int(len(labels)), "n_train": len(train),
              "n_weights": sum(p.numel() for p in model.parameters()),
              "epochs_run": len(history.epochs)}
    accelerator.free_memory()  # the accelerator keeps references to what it prepared
    return result


def process_info(accelerator: Any) -> list[dict[str, Any]]:
    """Every process's rank, operating-system process id and torch thread count (same list on all)."""
    from accelerate.utils import gather_object

    mine = {"rank": accelerator.process_index, "pid": os.getpid(), "threads": torch.get_num_threads()}
    return gather_object([mine])


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m transfer_utils.scaling`` (normally under ``accelerate launch``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default="", help="plan JSON written by ScalingPlan.to_json")
    parser.add_argument("--out", required=True, help="results JSON (written by the main process)")
    parser.add_argument("--probe", action="store_true", help="only report the processes that were started")
    parser.add_argument("--device", default="cpu", help="for --probe: 'cpu' or 'auto'")
    args = parser.parse_args(argv)
    plan = ScalingPlan.from_json(json.loads(Path(args.plan).read_text())) if args.plan else None
    torch.set_num_threads(plan.threads if plan else 1)
    accelerator = distributed.make_accelerator(plan.device if plan else args.device)
    report: dict[str, Any] = {"world_size": accelerator.num_processes,
                              "distributed_type": str(accelerator.distributed_type).split(".")[-1],
                              "backend": str(getattr(accelerator.state, "backend", None)),
                              "mixed_precision": str(accelerator.mixed_precision),
                              "processes": process_info(accelerator)}
    if plan is not None:
        task = load_task(plan)
        report["jobs"] = [run_job(accelerator, plan, job, task) for job in plan.jobs]
        if plan.allreduce_numel:
            report["allreduce_seconds"] = distributed.allreduce_seconds(accelerator, plan.allreduce_numel)
    if accelerator.is_main_process:
        atomic_write_json(args.out, report)
    accelerator.wait_for_everyone()
    accelerator.end_training()


def run_launched(config_file: str | Path, plan: ScalingPlan | None, folder: str | Path, name: str, *,
                 timeout: float) -> dict[str, Any]:
    """Launch ``plan`` (or a probe, for None) with ``config_file``; its results, or ``LaunchError`` with its output."""
    folder = Path(folder)
    out = folder / f"{name}.results.json"
    out.unlink(missing_ok=True)
    args = ["--out", out]
    if plan is not None:
        atomic_write_json(folder / f"{name}.plan.json", plan.to_json())
        args = ["--plan", folder / f"{name}.plan.json", *args]
    else:
        args.append("--probe")
    command = distributed.launch_command(config_file, "transfer_utils.scaling", args)
    distributed.launch(command, timeout=timeout, log=folder / f"{name}.log")
    if not out.exists():
        raise distributed.LaunchError(f"the launched run ended without writing {out}; see {folder / (name + '.log')}")
    return json.loads(out.read_text())


if __name__ == "__main__":
    main()
