# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 12 · Scaling out: the same training loop on several processes
#
# **Goals.** By the end of this notebook you will
# 1. run the course's own training loop (`training.fit`) unchanged on one process and on two processes
#    through Hugging Face `accelerate`, the engine most of the ecosystem uses for data parallelism (DDP) on
#    CPUs, one GPU, many GPUs and many machines;
# 2. check that two processes compute what one process computes: the same losses step by step when nothing
#    random differs, the same accuracy within seed noise when dropout does, and the world size really two;
# 3. see why gradient accumulation is a larger batch, measure what bf16 mixed precision does to accuracy and
#    speed, and stop and resume a two-process run from a checkpoint;
# 4. know what changes on a multi-GPU node and on several machines (the launcher and its config file, not
#    the code), and why two processes on two CPU cores do not train faster.
#
# **Prerequisites.** [07](07_bert_fine_tuning.ipynb) (the fine-tuning pipeline this lesson runs on several
# processes). No GPU is needed: everything runs on a 2-core CPU.
#
# **Time.** for you ≈ 40 min reading + 75 min exercises; for the machine, smoke ≈ 1.3 min · default ≈ 4.8 min on a 2-core CPU (measured by `bench/lesson_times.py`).

# %%
import dataclasses
import inspect
import os
import shutil
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

# %% tags=["parameters"]
seed: int = 0  # first seed; the runs use seed, seed + 1, ...
device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps"
profile: str = os.environ.get("COURSE_PROFILE", "default")  # "smoke" (CI, ~1 min), "default" (laptop CPU), "full"
metrics_path: str = ""  # "" means data/runs/<profile>/12_scaling_out.metrics.json
model_name: str = "minilm"  # "minilm" (offline 6-layer BERT) or a hub name such as "bert-base-uncased"
n_seeds: int = 0  # seeds per setting; 0 means the profile's choice (smoke 1, default 3)
n_train: int = 0  # training snippets per run; 0 means the profile's choice (smoke 32, default 384)
processes: int = 2  # processes of the data-parallel run
batch_size: int = 16  # snippets per optimizer step, split between the processes (a multiple of processes)
max_length: int = 64  # tokens kept per snippet (the longest critic snippets are a little longer)
lr: float = 1e-4  # peak learning rate of AdamW after the warm-up
launch_timeout: int = 900  # seconds a launched run may take before it is stopped with an error

# %%
from transfer_utils import fine_tuning as tc
from transfer_utils import scaling
from transfer_utils import training
from transfer_utils.core import plots
from transfer_utils.core.evidence import Claims, compare, constant_baseline, spread, summarize
from transfer_utils.core.runtime import check_int, check_float, start_lesson
from transfer_utils.core.storage import safe_torch_load
from transfer_utils.models.pretrained import check_text_model, load_text_classifier
from transfer_utils.training import distributed, precision

lesson = start_lesson("12_scaling_out", seed=seed, device=device, profile=profile, metrics_path=metrics_path)
claims = Claims()  # the sentences this run's numbers decide, shown in the summary and saved with the metrics
check_text_model("model_name", model_name)
n_seeds = check_int("n_seeds", n_seeds, low=0, high=10) or lesson.pick(smoke=1, default=3)
n_train = check_int("n_train", n_train, low=0, high=8000) or lesson.pick(smoke=32, default=384)
check_int("processes", processes, low=2, high=8)
check_int("batch_size", batch_size, low=processes, high=256)
if batch_size % processes:
    raise ValueError(f"batch_size ({batch_size}) must be a multiple of processes ({processes}): each gets a share")
check_int("max_length", max_length, low=16, high=512)
check_float("lr", lr, low=1e-7, high=1e-2)
check_int("launch_timeout", launch_timeout, low=30, high=7200)
plots.setup()
sizes = lesson.pick(smoke={"n_test": 96, "exact_train": 48}, default={"n_test": 320, "exact_train": 128})
seeds = [lesson.seed + i for i in range(n_seeds)]
on_gpu = lesson.device.type == "cuda"
run_device = "auto" if on_gpu else "cpu"  # what the launched processes ask accelerate for
run_folder = lesson.metrics_path.parent / "12_scaling_out.run"  # config files, plans, results, logs
run_folder.mkdir(parents=True, exist_ok=True)
print(lesson, {"seeds": seeds, "n_train": n_train, "batch_size": batch_size, "processes": processes, **sizes})
print("run folder:", run_folder)

# %% [markdown]
# ## 1. Data parallelism, and what `accelerate` does
#
# With **data parallelism** every process holds a whole copy of the model. Each optimizer step, the batch is
# cut into one share per process; every process runs forward and backward on its share; then the processes
# **all-reduce** their gradients (each ends up with the average of all of them) and every process applies
# the same update to its copy, so the copies stay identical. With equal shares, the average of the share
# gradients *is* the gradient of the whole batch: two processes with eight snippets each take the step one
# process takes with sixteen. PyTorch's `DistributedDataParallel` (DDP) does the all-reduce during the
# backward pass, bucket by bucket; the processes talk through a backend: NCCL between GPUs, gloo on CPUs.
#
# Hugging Face `accelerate` wraps all of that behind one object. `accelerator.prepare(model, optimizer,
# loader, scheduler)` wraps the model in DDP when there are several processes, gives each process its share
# of every batch, moves batches to the right device, and switches on mixed precision; `accelerator.backward`
# replaces `loss.backward()`; and `accelerate launch` starts the processes. The course's `training.fit`
# takes an `accelerator` and routes its step through it; `training.distributed.accelerated_fit` prepares the
# objects and calls that same `fit`. The only lines of the loop that know about it:

# %%
print(inspect.getsource(distributed.accelerated_fit))
print(inspect.getsource(training.loop._accelerated_step))

# %% [markdown]
# `run_job` (in `transfer_utils/scaling.py`) is lesson 07's recipe on top of it: MiniLM with a new
# classification head, critic snippets tokenized without padding, AdamW without decay on biases and
# LayerNorm, warm-up then linear decay, clipping at norm 1. It records every step's loss, times the
# training, and scores the test snippets with all processes sharing the work (`gathered_predict`). The same
# function runs in this notebook (one process) and in every launched process.
#
# ## 2. One process, in this notebook
#
# First the reference: the job on one process, with the threads this notebook has. `make_accelerator`
# builds an `Accelerator` with `split_batches=True`: a loader batch of sixteen is split between the
# processes, so the batch of an optimizer step, the number of steps and the learning-rate schedule do not
# depend on how many processes there are.

# %%
plan_common = dict(model_name=model_name, batch_size=batch_size, max_length=max_length, lr=lr,
                   n_test=sizes["n_test"], device=run_device, data_seed=lesson.seed)
seed_jobs = [scaling.ScalingJob(f"seed{s}", seed=s, n_train=n_train, epochs=2) for s in seeds]
exact_job = scaling.ScalingJob("exact", seed=lesson.seed, n_train=sizes["exact_train"], dropout=False)
one_plan = scaling.ScalingPlan(jobs=[*seed_jobs, exact_job], threads=lesson.threads, **plan_common)
accelerator = distributed.make_accelerator(run_device)
task = scaling.load_task(one_plan)
print(f"one process: {accelerator.num_processes} process, {accelerator.distributed_type}, device "
      f"{accelerator.device}, {torch.get_num_threads()} torch threads; {len(task.train_x)} training and "
      f"{len(task.test)} test snippets")
one = {}
for job in one_plan.jobs:
    one[job.name] = scaling.run_job(accelerator, one_plan, job, task)
    print(f"{job.name}: {one[job.name]['steps']} steps, {one[job.name]['median_step_seconds']:.2f} s per step (median), "
          f"test accuracy {one[job.name]['test_accuracy']:.3f}")
constant_accuracy = constant_baseline(task.test.labels, "accuracy")
print(f"the best constant answer scores {constant_accuracy:.3f} on these {len(task.test)} test snippets")

# %% [markdown]
# ## 3. Launching two processes, and checking there really are two
#
# `accelerate launch --config_file FILE -m MODULE` reads how many processes to start, on which hardware and
# with which precision from a YAML file, starts them, and gives each its rank through environment
# variables. The lesson writes its config files into the run folder (never into the repository).
#
# A trap first. A config that says `distributed_type: MULTI_CPU` with `num_processes: 2` looks like the way
# to get two CPU processes, and so does `accelerate launch --cpu --num_processes 2`. In this version of
# `accelerate`, both start **one** process: several CPU processes are left to `mpirun`. Nothing fails: the
# script simply trains alone. A *probe* run of the lesson's module shows how many processes came up:

# %%
configs = {
    "multi_cpu_probe": distributed.launch_config(processes, distributed_type="MULTI_CPU",
                                                 main_process_port=distributed.free_port()),
    "two_processes": distributed.launch_config(processes, gpus=on_gpu, main_process_port=distributed.free_port()),
    "one_process_bf16": distributed.launch_config(1, gpus=on_gpu, mixed_precision="bf16"),
}
config_files = {name: distributed.write_launch_config(run_folder / f"{name}.yaml", config,
                                                      comment=f"written by lesson 12: {name}")
                for name, config in configs.items()}
print(config_files["two_processes"].read_text())
probe = scaling.run_launched(config_files["multi_cpu_probe"], None, run_folder, "multi_cpu_probe",
                             timeout=launch_timeout)
print("MULTI_CPU config, probe:", {k: probe[k] for k in ("world_size", "distributed_type", "processes")})
display(Markdown(claims.claim(
    "multi_cpu_config_starts_one_process", probe["world_size"] == 1,
    f"The `MULTI_CPU` config asked for {processes} processes and started {probe['world_size']}: without "
    "`mpirun`, this launcher runs the script once. Always check the world size a run reports.",
    f"The `MULTI_CPU` config started {probe['world_size']} processes here (a newer `accelerate`, or `mpirun` "
    "found): check the world size all the same.")))

# %% [markdown]
# The config that works on one machine (`two_processes.yaml`, printed above) names accelerate's torchrun
# launcher, which its files call `MULTI_GPU`; it starts `num_processes` local processes, and because the
# script asks for the CPU (`make_accelerator("cpu")`), they are CPU processes talking over gloo. Each process
# also gets **one** torch thread: two processes with two threads each would fight over two cores.
#
# The plan: every seed's job, the dropout-free job, the first seed's job once more but stopped after its
# first epoch with a checkpoint (section 7 resumes it in new processes), and a timing of the all-reduce.

# %%
checkpoint_dir = tempfile.mkdtemp(prefix="scaling_checkpoint_")  # a few hundred MB, deleted at the end
first = seed_jobs[0]
two_plan = scaling.ScalingPlan(
    jobs=[dataclasses.replace(first, fingerprint=str(run_folder / "uninterrupted.pt")), *seed_jobs[1:], exact_job,
          dataclasses.replace(first, name="first_half", stop_after_epochs=1, checkpoint_dir=checkpoint_dir)],
    threads=max(1, lesson.threads // processes), allreduce_numel=one["exact"]["n_weights"], **plan_common)
started = time.perf_counter()
two_run = scaling.run_launched(config_files["two_processes"], two_plan, run_folder, "two_processes",
                               timeout=launch_timeout)
two_launch_seconds = time.perf_counter() - started
two = {job["name"]: job for job in two_run["jobs"]}
print(f"launch took {two_launch_seconds:.0f} s;", {k: two_run[k] for k in ("world_size", "distributed_type",
                                                                          "backend", "processes")})
world_size = two_run["world_size"]
distinct_pids = len({p["pid"] for p in two_run["processes"]})
assert world_size == processes and distinct_pids == processes, (
    f"asked for {processes} processes, got world size {world_size} in {distinct_pids} OS processes")
display(Markdown(claims.claim(
    "two_processes_started", world_size == processes and distinct_pids == processes,
    f"The launched run reported world size {world_size}, from {distinct_pids} separate operating-system "
    f"processes (backend {two_run['backend']}, {two_run['processes'][0]['threads']} torch thread each).",
    f"The launched run reported world size {world_size} from {distinct_pids} processes, not {processes}.")))

# %% [markdown]
# ## 4. Do two processes compute what one computes?
#
# **Without randomness, the same numbers.** The dropout-free job has nothing random left but float rounding:
# the same head (seeded before loading), the same data order, the same batches, split in two. Its losses,
# step by step:

# %%
one_exact, two_exact = np.array(one["exact"]["step_losses"]), np.array(two["exact"]["step_losses"])
exact_table = pd.DataFrame({"1 process": one_exact, f"{processes} processes": two_exact,
                            "difference": two_exact - one_exact}, index=pd.RangeIndex(1, len(one_exact) + 1, name="step"))
exact_max_diff = float(np.abs(two_exact - one_exact).max())
print(exact_table.round(6).to_string())
display(Markdown(claims.claim(
    "same_losses_without_dropout", exact_max_diff < 1e-3,
    f"Without dropout, the {processes}-process run's loss differs from the 1-process loss by at most "
    f"{exact_max_diff:.1e} over {len(one_exact)} steps: the same computation, up to float rounding.",
    f"Without dropout, the losses of the two runs differ by up to {exact_max_diff:.1e}: more than float "
    "rounding, so the runs did not compute the same steps.")))

# %% [markdown]
# **With dropout, the same within seed noise.** Dropout draws a different mask for a share of eight than
# for a batch of sixteen, so from the first step on the two runs draw different random numbers. They still
# do the same job; whether they reach the same accuracy is a question for several seeds:

# %%
one_acc = [one[f"seed{s}"]["test_accuracy"] for s in seeds]
two_acc = [two[f"seed{s}"]["test_accuracy"] for s in seeds]
agreement = compare(two_acc, one_acc, f"{processes} processes", "1 process")
seed_std = spread(one_acc)[1]
print(pd.DataFrame({"1 process": one_acc, f"{processes} processes": two_acc}, index=pd.Index(seeds, name="seed")))
print(f"test accuracy: 1 process {summarize(one_acc)}, {processes} processes {summarize(two_acc)}; "
      f"best constant answer {constant_accuracy:.3f}")
display(Markdown(claims.comparison("two_vs_one_process_accuracy", agreement)))
within_noise = abs(agreement.gap) <= max(2 * seed_std, 2 * agreement.standard_error, 0.01)
display(Markdown(claims.claim(
    "agree_within_seed_noise", within_noise and agreement.enough_seeds,
    f"The mean gap ({agreement.gap:+.3f}) is within the seed-to-seed spread of one process "
    f"(standard deviation {seed_std:.3f}): two processes train the same model as one.",
    f"Agreement within seed noise is not shown: gap {agreement.gap:+.3f}, seed standard deviation "
    f"{seed_std:.3f}, {len(seeds)} seed(s) (at least 3 needed).")))
first_losses = (np.array(two[f"seed{seeds[0]}"]["step_losses"][:5]), np.array(one[f"seed{seeds[0]}"]["step_losses"][:5]))
first_steps_gap = float(np.abs(first_losses[0] - first_losses[1]).max())
fig, ax = plt.subplots(figsize=(6, 2.8))
for label, run in (("1 process", one), (f"{processes} processes", two)):
    ax.plot(range(1, len(run[f"seed{seeds[0]}"]["step_losses"]) + 1), run[f"seed{seeds[0]}"]["step_losses"],
            label=label, alpha=0.8)
ax.set(title=f"Training loss per step, seed {seeds[0]} (with dropout)", xlabel="optimizer step",
       ylabel="loss of the whole batch")
ax.legend()
plt.show()
display(Markdown(claims.claim(
    "first_steps_close", first_steps_gap < 0.1,
    f"Over the first steps the two losses stay within {first_steps_gap:.3f} of each other (dropout alone).",
    f"Over the first steps the losses differ by up to {first_steps_gap:.3f}: more than dropout explains.")))

# %% [markdown]
# ## 5. What to expect on two CPU cores: no speed-up
#
# Two processes on two cores have exactly the cores one process with two threads has, and together they do
# the same arithmetic: the most they can gain is what one process's two threads leave idle. Against that,
# every step the processes send each other the whole gradient (one number per weight) and wait for it, and
# each process repeats the whole AdamW update of all the weights on its single core.

# %%
one_sps = [one[f"seed{s}"]["median_step_seconds"] for s in seeds]
two_sps = [two[f"seed{s}"]["median_step_seconds"] for s in seeds]
n_weights = two_plan.allreduce_numel
allreduce_s = two_run["allreduce_seconds"]
speedup = float(np.mean(one_sps) / np.mean(two_sps))
timing = pd.DataFrame({"seconds per step": [np.mean(one_sps), np.mean(two_sps)],
                       "torch threads per process": [lesson.threads, two_plan.threads]},
                      index=["1 process", f"{processes} processes"])
print(timing.round(3), "\n(median time between consecutive steps, which leaves out the first step's warm-up)")
print(f"all-reducing {n_weights / 1e6:.1f}M gradient numbers ({4 * n_weights / 1e6:.0f} MB) takes {allreduce_s:.3f} s "
      f"= {allreduce_s / np.mean(two_sps):.0%} of a {processes}-process step")
display(Markdown(claims.claim(
    "no_speedup_on_two_cores", speedup < 1.1,
    f"On this machine ({os.cpu_count()} CPU cores) {processes} processes took {np.mean(two_sps):.2f} s per step "
    f"against {np.mean(one_sps):.2f} s for one process (speed-up {speedup:.2f}×, i.e. none): the same cores do "
    f"the same arithmetic, and averaging {4 * n_weights / 1e6:.0f} MB of gradients costs {allreduce_s:.2f} s "
    "per step on top.",
    f"Here {processes} processes ran at {speedup:.2f}× the speed of one ({np.mean(two_sps):.2f} vs "
    f"{np.mean(one_sps):.2f} s per step, {os.cpu_count()} CPU cores seen). Possible reasons: idle cores for the "
    "extra process; two single-threaded processes keeping two cores busier than one process's two threads do on "
    "batches this small; or other work on the machine, which slows multi-threaded runs most. Time both alone "
    "before concluding.")))

# %% [markdown]
# On a machine with one GPU per process the picture turns around: each process brings its own device, so
# the arithmetic per step is divided by the number of GPUs, while NCCL all-reduces over NVLink or PCIe in
# a few milliseconds and overlaps with the backward pass. Data parallelism pays when the extra processes
# bring extra hardware.
#
# ## 6. Gradient accumulation is a larger batch
#
# When a batch does not fit in memory, **accumulate**: run k micro-batches, add up their gradients, step
# once. Each micro-batch's loss is divided by k, so the sum of the gradients is the gradient of the mean
# loss over all k · b examples. `accelerate` does the division in `accelerator.backward`, skips the
# optimizer step, the schedule and `zero_grad` on the first k − 1 micro-batches (`accelerator.accumulate`),
# and, with several processes, skips the all-reduce on them too. The effective batch of a step is
# *examples per process × processes × accumulation steps*.
#
# Check: one step on a batch of sixteen (plain `fit`) against two micro-batches of eight accumulated
# (through an accelerator), from the same weights, without dropout. We use plain SGD: Adam's first step is
# about the sign of the gradient, which would hide a gradient twice too large.

# %%
accumulate = 2
tokenizer = task.tokenizer
exact_data = tc.TokenizedTexts(task.train_x[:batch_size], task.train_y[:batch_size], tokenizer, max_length)


def one_step(micro_batch: int, accumulation: int) -> torch.nn.Module:
    """Weights after one SGD step on the first ``batch_size`` snippets, in micro-batches of ``micro_batch``."""
    torch.manual_seed(lesson.seed)
    _, model = load_text_classifier(model_name, num_labels=2, **scaling.NO_DROPOUT)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = tc.text_loader(exact_data, tokenizer, micro_batch, shuffle=False, group_by_length=False)
    if accumulation == 1:
        training.fit(model, loader, optimizer, max_steps=1, progress=False)
    else:
        micro = distributed.make_accelerator(run_device, gradient_accumulation_steps=accumulation)
        history = distributed.accelerated_fit(micro, model, loader, optimizer, max_steps=1, progress=False)
        assert history.steps == 1
        micro.free_memory()
    return model


def max_weight_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """Largest difference between two models' weights."""
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters()))


big_batch = one_step(batch_size, 1)
accumulated = one_step(batch_size // accumulate, accumulate)
torch.manual_seed(lesson.seed)
untrained = load_text_classifier(model_name, num_labels=2, **scaling.NO_DROPOUT)[1]
accumulation_diff = max_weight_diff(big_batch, accumulated)
step_size = max_weight_diff(big_batch, untrained)
print(f"largest weight change of the step: {step_size:.2e}; largest difference between one batch of "
      f"{batch_size} and {accumulate} accumulated micro-batches of {batch_size // accumulate}: {accumulation_diff:.2e}")
display(Markdown(claims.claim(
    "accumulation_equals_larger_batch", accumulation_diff < 1e-3 * step_size,
    f"{accumulate} accumulated micro-batches of {batch_size // accumulate} give the weights of one batch of "
    f"{batch_size}: they differ by {accumulation_diff:.1e}, against a step of {step_size:.1e}.",
    f"The accumulated step differs from the large-batch step by {accumulation_diff:.1e} (the step itself "
    f"is {step_size:.1e}): not the same update.")))
del big_batch, accumulated, untrained

# %% [markdown]
# ## 7. Mixed precision: bf16
#
# Mixed precision runs most matrix products in a 16-bit format while the weights, the optimizer and the
# sums that need range stay in float32. **bf16** keeps float32's 8 exponent bits (the same range) and only
# 7 mantissa bits (about two to three significant digits); **fp16** has 10 mantissa bits but only 5
# exponent bits, so small gradients underflow to zero unless the loss is multiplied up first (a *gradient
# scaler*; `accelerator.backward` does that for fp16). On GPUs both are much faster than float32 (tensor
# cores); on CPUs, bf16 helps only where the processor has bf16 instructions. With `accelerate` it is one
# line of the config file (`mixed_precision: bf16`), here with one process:

# %%
bf16_plan = scaling.ScalingPlan(jobs=seed_jobs, threads=lesson.threads, **plan_common)
bf16_run = scaling.run_launched(config_files["one_process_bf16"], bf16_plan, run_folder, "one_process_bf16",
                                timeout=launch_timeout)
bf16 = {job["name"]: job for job in bf16_run["jobs"]}
assert bf16_run["mixed_precision"] == "bf16" and bf16_run["world_size"] == 1
bf16_acc = [bf16[f"seed{s}"]["test_accuracy"] for s in seeds]
bf16_sps = [bf16[f"seed{s}"]["median_step_seconds"] for s in seeds]
bf16_speed = float(np.mean(one_sps) / np.mean(bf16_sps))
print(pd.DataFrame({"float32 accuracy": one_acc, "bf16 accuracy": bf16_acc, "float32 s/step": one_sps,
                    "bf16 s/step": bf16_sps}, index=pd.Index(seeds, name="seed")).round(3))
print(f"test accuracy: float32 {summarize(one_acc)}, bf16 {summarize(bf16_acc)}; best constant answer "
      f"{constant_accuracy:.3f}")
bf16_vs_fp32 = compare(bf16_acc, one_acc, "bf16", "float32")
bf16_flags = precision.cpu_bf16_flags()  # the bf16 instruction sets this CPU reports (Linux)
print("bf16 instructions this CPU reports:", bf16_flags or "none (or not a Linux machine)")
display(Markdown(claims.comparison("bf16_vs_float32_accuracy", bf16_vs_fp32)))
display(Markdown(claims.claim(
    "bf16_faster_on_this_cpu", bf16_speed > 1.1,
    f"bf16 ran {bf16_speed:.2f}× as fast as float32 here ({np.mean(bf16_sps):.2f} vs {np.mean(one_sps):.2f} s "
    f"per step); this CPU reports {', '.join(bf16_flags) or 'no bf16 instructions'}.",
    f"bf16 was not faster here ({bf16_speed:.2f}× the speed of float32, {np.mean(bf16_sps):.2f} vs "
    f"{np.mean(one_sps):.2f} s per step): on this CPU the conversions cost as much as the narrower products save.")))

# %% [markdown]
# ## 8. Checkpoint, stop, resume in new processes
#
# A long run on a shared machine gets interrupted. `fit` writes `latest.pt` after every epoch (the course's
# checksummed checkpoints): weights, optimizer and schedule, the data order and the random states. With
# several processes only the main process writes (every process holds the same weights), after
# collecting every process's random state so that each resumes its own dropout stream; the others wait
# until the file is complete. The two-process launch above stopped a copy of the first seed's job after
# its first epoch. Now *new* processes resume it and finish the second epoch:

# %%
resume_plan = scaling.ScalingPlan(
    jobs=[dataclasses.replace(first, name="resumed", resume_from=checkpoint_dir,
                              fingerprint=str(run_folder / "resumed.pt"))],
    threads=two_plan.threads, **plan_common)
resume_run = scaling.run_launched(config_files["two_processes"], resume_plan, run_folder, "resumed",
                                  timeout=launch_timeout)
resumed = resume_run["jobs"][0]
uninterrupted_weights, resumed_weights = (safe_torch_load(run_folder / "uninterrupted.pt"),
                                          safe_torch_load(run_folder / "resumed.pt"))
resume_max_diff = max(float((uninterrupted_weights[k] - resumed_weights[k]).abs().max()) for k in uninterrupted_weights)
steps_first_half, steps_resumed = two["first_half"]["steps"], resumed["steps"] - two["first_half"]["steps"]
print(f"first launch: {steps_first_half} steps, then stopped; second launch (world size {resume_run['world_size']}): "
      f"resumed at step {steps_first_half + 1}, finished at step {resumed['steps']}")
print(f"test accuracy: uninterrupted {two[first.name]['test_accuracy']:.3f}, resumed {resumed['test_accuracy']:.3f}")
display(Markdown(claims.claim(
    "resume_matches_uninterrupted", resume_max_diff < 1e-5 and resume_run["world_size"] == processes,
    f"Stopped after {steps_first_half} steps and resumed by {resume_run['world_size']} new processes, the run "
    f"ends with the weights of the uninterrupted run (largest difference {resume_max_diff:.1e}).",
    f"The resumed run ends {resume_max_diff:.1e} away from the uninterrupted one (world size "
    f"{resume_run['world_size']}): something the checkpoint should carry was lost.")))
shutil.rmtree(checkpoint_dir, ignore_errors=True)

# %% [markdown]
# ## 9. On a multi-GPU node, and on several machines
#
# The script does not change. What changes is the config file the launcher reads:
#
# * **One GPU**: no config needed (`python script.py`): `Accelerator()` finds the GPU; `mixed_precision`
#   `bf16` (Ampere and newer) or `fp16` (with the scaler) speeds it up.
# * **One node with N GPUs**: `distributed_type: MULTI_GPU`, `num_processes: N`, one process per GPU,
#   NCCL between them. Keep the batch per GPU that fits its memory; the effective batch becomes
#   per-GPU batch × N × accumulation, and the learning rate usually needs re-tuning (on validation data) for
#   the larger batch, often starting from a rate scaled with it.
# * **Several nodes**: the same file on every machine with `num_machines`, the total `num_processes`, the
#   address and port of the main machine (`main_process_ip`, `main_process_port`) and this machine's
#   `machine_rank` (0 on the main one); start `accelerate launch` on every machine. `fit` writes checkpoints
#   from the main process only, so put `checkpoint_dir` on a disk every machine can read, or only the main
#   machine could resume.
# * Models too large for one GPU need sharding instead of copies: FSDP or DeepSpeed, chosen in the same
#   config file (`distributed_type: FSDP`) and still prepared by `accelerator.prepare`.
#
# The lesson writes these files next to the ones it used, and checks that `accelerate` reads them:

# %%
from accelerate.commands.config.config_args import load_config_from_file

cluster_configs = {
    "one_node_4_gpus": distributed.launch_config(4, gpus=True, mixed_precision="bf16"),
    "two_nodes_node0": distributed.launch_config(16, gpus=True, mixed_precision="bf16", num_machines=2,
                                                 machine_rank=0, main_process_ip="10.0.0.1"),
    "two_nodes_node1": distributed.launch_config(16, gpus=True, mixed_precision="bf16", num_machines=2,
                                                 machine_rank=1, main_process_ip="10.0.0.1"),
}
rows = []
for name, config in cluster_configs.items():
    path = distributed.write_launch_config(run_folder / f"{name}.yaml", config, comment=f"lesson 12 example: {name}")
    loaded = load_config_from_file(str(path))
    command = distributed.launch_command(path.name, "transfer_utils.scaling", ["--plan", "plan.json", "--out",
                                                                               "results.json"])
    rows.append({"config": path.name, "type": loaded.distributed_type.value, "processes": loaded.num_processes,
                 "machines": loaded.num_machines, "rank": loaded.machine_rank, "precision": loaded.mixed_precision,
                 "command": "accelerate launch " + " ".join(command[4:])})
print(pd.DataFrame(rows).to_string(index=False))
print(config_files["two_processes"].name, "(used above): ",
      "accelerate launch " + " ".join(distributed.launch_command(config_files["two_processes"].name,
                                                                  "transfer_utils.scaling", [])[4:]))

# %% [markdown]
# ## 10. Exercises
#
# Each exercise's function is checked right below it against the course's reference answer; the student
# version of the notebook leaves the functions empty, and a check then says "not attempted".
#
# **Exercise 1 (warm-up).** With `split_batches=True`, which examples of a batch does process `rank` of
# `processes` get? Return the indices of its share (the batch is a list of example indices; its length is a
# multiple of `processes`). Fine-tuning a pretrained model on several devices only matches the one-device run
# if every example lands in exactly one share.

# %%
# NBVAL_CHECK_OUTPUT
from transfer_utils.core.exercises import check_function, check_prediction, direction
from transfer_utils.solutions import lesson12 as solutions


def my_share(batch: list[int], rank: int, processes: int) -> list[int]:
    ### BEGIN SOLUTION
    size = len(batch) // processes
    return batch[rank * size:(rank + 1) * size]
    ### END SOLUTION


share_cases = [(list(range(16)), 0, 2), (list(range(16)), 1, 2), ([5, 3, 9, 1, 0, 7], 2, 3),
               ([4, 8], 1, 2),  # one example per process
               ([6, 2, 9, 4], 0, 1)]  # a single process keeps the whole batch
check_function(my_share, solutions.share, share_cases, name="exercise 1 (a process's share of a batch)")

# %% [markdown]
# **Exercise 2 (apply).** DDP averages the processes' gradients (or losses) with equal weight. Given each
# process's mean loss and how many examples it had, return the mean loss over all examples. The cases include
# unequal shares: there the plain average of the share means, printed below the check, is not that mean,
# which is why the batch is split into equal shares.

# %%
# NBVAL_CHECK_OUTPUT
def whole_batch_mean(share_means: list[float], share_sizes: list[int]) -> float:
    ### BEGIN SOLUTION
    return float(np.dot(share_means, share_sizes) / np.sum(share_sizes))
    ### END SOLUTION


losses_by_example = np.array([0.2, 0.9, 0.4, 0.7, 1.3, 0.1, 0.5])
cut_shares = {cut: (losses_by_example[:cut], losses_by_example[cut:]) for cut in (3, 5)}
mean_cases = [([float(s.mean()) for s in shares], [len(s) for s in shares]) for shares in cut_shares.values()]
mean_cases += [([0.4, 0.8], [4, 4]),  # equal shares
               ([0.6], [7]),  # one process
               ([0.2, 1.0, 0.4], [1, 5, 2])]  # three processes, one of them with a single example
check_function(whole_batch_mean, solutions.whole_batch_mean, mean_cases, name="exercise 2 (the whole batch's mean)")
for cut, shares in cut_shares.items():
    print(f"  shares of {len(shares[0])} and {len(shares[1])}: plain average of the two share means "
          f"{np.mean([s.mean() for s in shares]):.4f}")

# %% [markdown]
# **Exercise 3 (apply).** Accumulate by hand: for a model, inputs `x` and labels `y`, split the batch into
# `k` equal micro-batches, run backward on each micro-batch's mean cross-entropy divided by `k`, and leave the
# summed gradients in the parameters (the function then returns them as one flat vector). They must equal
# the gradient of one full batch: this is how a large pretrained model is fine-tuned with the batch size
# of a paper on a device that only fits a few examples at a time.

# %%
# NBVAL_CHECK_OUTPUT
def accumulated_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    model.zero_grad()
    ### BEGIN SOLUTION
    for xb, yb in zip(x.chunk(k), y.chunk(k)):
        (torch.nn.functional.cross_entropy(model(xb), yb) / k).backward()
    ### END SOLUTION
    return torch.cat([p.grad.flatten() for p in model.parameters()])


generator = torch.Generator().manual_seed(0)
toy = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
toy_x, toy_y = torch.randn(12, 4, generator=generator), torch.randint(0, 3, (12,), generator=generator)
check_function(accumulated_gradients, solutions.full_batch_gradient,
               [(toy, toy_x, toy_y, k) for k in (2, 3, 4)]
               + [(toy, toy_x, toy_y, 1),  # no accumulation at all
                  (toy, toy_x, toy_y, 12)],  # micro-batches of a single example
               name="exercise 3 (gradient accumulation)", atol=1e-6)

# %% [markdown]
# **Exercise 4 (extend).** Round float32 numbers to bf16 by hand: keep the top 16 bits of each number's bit
# pattern, rounding to nearest (ties to even) on the 16 bits dropped, and return float32 values. The check
# compares with what `tensor.to(torch.bfloat16)` does, on ordinary numbers, exact ties, zeros of both signs,
# infinities, the largest float32 (which rounds up to infinity) and numbers too small for a normal float.
# (Hint: view the float32 tensor as `torch.int32`; add `0x7FFF` plus the lowest kept bit, then clear the low
# 16 bits.)

# %%
# NBVAL_CHECK_OUTPUT
def my_bf16(values: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    bits = values.float().contiguous().view(torch.int32).to(torch.int64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & ~0xFFFF
    rounded = torch.where(rounded >= 2**31, rounded - 2**32, rounded)  # back into int32's range
    return rounded.to(torch.int32).view(torch.float32)
    ### END SOLUTION


bf16_cases = [(torch.tensor([1.0, 1.00390625, 1.01171875, 3.14159265, -2.71828, 1e-3, 123456.0]),),  # two exact ties
              (torch.randn(100, generator=torch.Generator().manual_seed(1)) * 10,),
              (torch.tensor([0.0, -0.0, float("inf"), float("-inf")]),),
              (torch.tensor([3.4028235e38, -3.4028235e38]),),  # the largest float32 rounds up to infinity
              (torch.tensor([1e-40, -1e-40, 1e-45]),)]  # subnormal numbers
check_function(my_bf16, solutions.bf16_round, bf16_cases, name="exercise 4 (rounding to bf16)", atol=0, rtol=0)

# %% [markdown]
# **Exercise 5 (experiment).** Section 7's bf16 run computes in bf16 but keeps the weights in float32. Why
# not store the weights in bf16 too? An AdamW step moves each weight by about the learning rate, and when
# a pretrained model is fine-tuned that rate is small. The cell below starts a weight at 1 and adds a step of
# `1e-4` (this lesson's default learning rate) a hundred times, once with the weight stored in float32, then
# with it stored in bf16. Predict before you run: will the bf16 weight end "higher", "lower" or "about the
# same" as where it started? Put your prediction in `my_prediction`, then run the cell.

# %%
def my_prediction() -> str:
    ### BEGIN SOLUTION
    return "about the same"
    ### END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
update, n_updates = 1e-4, 100
final = {}
for dtype in (torch.float32, torch.bfloat16):
    weight = torch.ones(1, dtype=dtype)
    for _ in range(n_updates):
        weight = weight + update  # the sum is rounded to the weight's own format
    final[dtype] = float(weight)
before, after = 1.0, final[torch.bfloat16]
margin = n_updates * update / 2
outcome = direction(before, after, margin=margin)
check_prediction(my_prediction, outcome, name="exercise 5 (weights stored in bf16)",
                 choices=["higher", "lower", "about the same"],
                 evidence=f"after {n_updates} steps of {update:g}: float32 weight 1 → {final[torch.float32]:.4f}, "
                          f"bf16 weight 1 → {after:.4f}; the bf16 numbers next to 1 are {1 - 2 ** -8} and "
                          f"{1 + 2 ** -7}, so each step rounds back to 1")

# %% [markdown]
# ## 11. Results

# %%
metrics = {
    "world_size": world_size,
    "distinct_processes": distinct_pids,
    "multi_cpu_config_world_size": probe["world_size"],
    "n_seeds": len(seeds),
    "n_train": n_train,
    "n_test": len(task.test),
    "batch_size": batch_size,
    "constant_accuracy": constant_accuracy,
    "one_process_accuracy": one_acc,
    "two_process_accuracy": two_acc,
    "one_process_mean_accuracy": float(np.mean(one_acc)),
    "two_process_mean_accuracy": float(np.mean(two_acc)),
    "one_process_accuracy_std": seed_std,
    "exact_steps": len(one_exact),
    "exact_max_loss_diff": exact_max_diff,
    "first_steps_loss_gap": first_steps_gap,
    "one_process_seconds_per_step": float(np.mean(one_sps)),
    "two_process_seconds_per_step": float(np.mean(two_sps)),
    "speedup": speedup,
    "cpu_count": os.cpu_count() or 1,
    "allreduce_seconds": allreduce_s,
    "gradient_megabytes": 4 * n_weights / 1e6,
    "accumulation_max_weight_diff": accumulation_diff,
    "accumulation_step_size": step_size,
    "bf16_accuracy": bf16_acc,
    "bf16_mean_accuracy": float(np.mean(bf16_acc)),
    "bf16_seconds_per_step": float(np.mean(bf16_sps)),
    "bf16_speedup": bf16_speed,
    "resume_max_weight_diff": resume_max_diff,
    "resume_world_size": resume_run["world_size"],
    "steps_per_run": one[f"seed{seeds[0]}"]["steps"],
    **agreement.as_metrics("two_vs_one"),
    **bf16_vs_fp32.as_metrics("bf16_vs_fp32"),
    **claims.as_metrics(),
}
lesson.save_metrics(metrics)
assert world_size == processes and distinct_pids == processes
assert exact_max_diff < 1e-3, "two processes without dropout should reproduce one process's losses"
assert accumulation_diff < 1e-3 * step_size, "accumulated micro-batches should take the large batch's step"
assert resume_max_diff < 1e-5, "the resumed run should end with the uninterrupted run's weights"
assert first_steps_gap < lesson.pick(smoke=0.2, default=0.1)
accuracy_bar = constant_accuracy + lesson.pick(smoke=-0.15, default=0.03)  # smoke: a handful of steps
assert min(np.mean(one_acc), np.mean(two_acc)) > accuracy_bar, "both runs should learn beyond the constant answer"
if lesson.profile != "smoke":
    assert within_noise, f"1 and {processes} processes should agree within seed noise (gap {agreement.gap:+.3f})"
    assert abs(bf16_vs_fp32.gap) < 0.05, "bf16 should cost little accuracy on this short run"

# %% [markdown]
# ## Summary and what next
#
# * `accelerate` runs the course's unchanged `fit` on one or several processes: `accelerated_fit` prepares
#   the model (DDP), optimizer, loader and schedule; the loop sends its backward pass, clipping and
#   accumulation through the accelerator and writes checkpoints from the main process only.
# * Check the world size of every launched run; on CPUs, accelerate's `MULTI_CPU` setting without `mpirun`
#   quietly starts a single process.
# * With equal shares, the all-reduced gradient is the whole batch's gradient, so two processes take the step
#   one process takes (section 4 checks it on this run). Gradient accumulation is a larger batch, when each
#   micro-batch's loss is divided by k.
# * bf16 keeps float32's range with fewer digits; fp16 needs a gradient scaler. Whether either is faster
#   depends on the hardware: measure it.
# * Extra processes add communication; they pay when they bring extra hardware (section 5 measured what two
#   processes did on this machine).

# %%
display(Markdown(claims.markdown("What this run showed")))

# %% [markdown]
# **Next:** this is the last lesson of the course. Go back to [07 · BERT fine-tuning](07_bert_fine_tuning.ipynb)
# and run its job through `accelerated_fit` on the hardware you have, or to
# [11 · Parameter-efficient fine-tuning](11_parameter_efficient_fine_tuning.ipynb), which trains a few
# percent of the weights: fewer gradients to all-reduce, so it scales out even more cheaply.
