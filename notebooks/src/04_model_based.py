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
# # 04 · Model-based (parameter) transfer
#
# **Goals.** By the end of this notebook you will
# 1. start a new task from a pretrained network's parameters and choose *which* of them may change,
#    *how fast* and *how far*: head only, gradual unfreezing, full fine-tuning with one learning rate,
#    layer-wise (discriminative) learning rates, and L2-SP against plain weight decay;
# 2. measure **forgetting**: what each strategy does to the accuracy on the task the network was
#    pretrained for, and how much of the loss comes from batch-norm statistics alone;
# 3. share one encoder between two tasks (hard parameter sharing) and compare it with two separate models;
# 4. write the update rule θ ← θ − η∇L − ηλθ, check it against `torch.optim.SGD(weight_decay=λ)` to the
#    last digit, and know why AdamW takes the decay out of the gradient.
#
# **Prerequisites.** Lesson 01 (fine-tuning vs frozen features), the training loop
# (`transfer_utils.training`), gradient descent. Lesson 08 uses the same pretrained network for the
# layer-transferability experiment; either lesson can come first.
#
# **Time.** for you ≈ 40 min reading + 40 min exercises; for the machine, smoke ≈ 0.7 min · default ≈ 2.5 min on a 2-core CPU (measured by `bench/lesson_times.py`).

# %%
import copy
import inspect
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

# %% tags=["parameters"]
seed: int = 0  # seeds the labelled sample, the new heads and the data order
device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps"
profile: str = os.environ.get("COURSE_PROFILE", "default")  # "smoke" (CI, ~1 min), "default" (laptop), "full"
metrics_path: str = ""  # where the metrics JSON goes; "" means data/runs/<profile>/04_model_based.metrics.json
k: int = 20  # labelled images per target class (5 classes)
width: int = 16  # channels of the pretrained ResNet's first block (the cached source model of lesson 08)
lr: float = 0.05  # top learning rate (SGD with momentum 0.9, cosine decay); layer-wise rates go down from it
decay: float = 0.5  # layer-wise rates: each stage below the head learns this much slower than the one above
strength: float = 0.01  # λ of weight decay and α of L2-SP (the same strength, different anchor)

# %%
from transfer_utils.data import image_tensors
from transfer_utils.models import small_resnet
from transfer_utils.data import loaders
from transfer_utils.data import datasets
from transfer_utils.methods import parameter
from transfer_utils.core import plots
from transfer_utils.models import source_model
from transfer_utils import training
from transfer_utils.training.side_by_side import run_side_by_side
from transfer_utils.core.exercises import check_function
from transfer_utils.models.parts import count_parameters
from transfer_utils.core.runtime import check_float, check_int, check_seed, start_lesson
from transfer_utils.core.evidence import Claims, compare, constant_baseline, summarize
from IPython.display import Markdown, display

lesson = start_lesson("04_model_based", seed=seed, device=device, profile=profile, metrics_path=metrics_path)
check_int("k", k, low=1, high=1000)
check_int("width", width, low=4, high=64)
check_float("lr", lr, low=1e-5, high=1.0)
check_float("decay", decay, low=0.01, high=1.0)
check_float("strength", strength, low=0.0, high=1.0)
plots.setup()
# three seeds per strategy in the default profile: enough to call a paired difference clear (evidence.compare)
settings = lesson.pick(smoke={"steps": 60, "seeds": 1, "test": 1000, "val": 500, "joint_source": 1000},
                       default={"steps": 100, "seeds": 3, "test": 2000, "val": 1000, "joint_source": 2000},
                       full={"steps": 600, "seeds": 5, "test": 5000, "val": 2000, "joint_source": 5000})
check_seed(seed, max(2, settings["seeds"]))  # runs use seed, seed + 1, ...
print(lesson, settings)
claims = Claims()  # every sentence below that states a result is decided by this run's numbers

# %% [markdown]
# ## 1. Model-based transfer: the parameters are the knowledge
#
# Instance-based transfer (lesson 02) re-weights source *examples*, feature-based transfer (lesson 03)
# reuses a *representation*. Model-based transfer reuses the **parameters** θ⁰ of a network trained on
# a source task as the starting point on the target task, and then decides how far they may move.
# The sources state the idea, fine-tune everything with one learning rate and claim the result "keeps
# the source performance". Here we measure, on one network and one task, six ways to do it.
#
# **The source network** is lesson 08's: torchvision's `ResNet` (BasicBlocks, one per stage, a stem
# for 28×28 images), pretrained on five Fashion-MNIST classes: T-shirt, Trouser, Pullover, Dress, Coat.
# Its weights are cached under `data/cache/source_resnet/` and retrained when missing or stale.
# **The target task** is the five other classes (Sandal, Shirt, Sneaker, Bag, Ankle boot) with `k`
# labelled images each. The network keeps its old 5-class head aside, so after every strategy we can
# still ask it about the source task: that is how forgetting is measured.

# %%
config = source_model.source_config(lesson.profile, width=width)
source = source_model.pretrained_source_model(config, device=lesson.device)
fashion = datasets.load_fashion_mnist()
target_train = source_model.class_subset(fashion.train, source_model.TARGET_CLASSES)
target_test = datasets.sample_n(source_model.class_subset(fashion.test, source_model.TARGET_CLASSES),
                                settings["test"], seed=0)
source_test = datasets.sample_n(source_model.class_subset(fashion.test, source_model.SOURCE_CLASSES),
                                settings["test"], seed=0)
target_test_loader = image_tensors.image_loader(image_tensors.grey_tensor(target_test.x), target_test.y, 500)
# validation images of the target classes (from Fashion-MNIST's validation split): every choice is made on these
target_val = datasets.sample_n(source_model.class_subset(fashion.val, source_model.TARGET_CLASSES), settings["val"], seed=0)
target_val_loader = image_tensors.image_loader(image_tensors.grey_tensor(target_val.x), target_val.y, 500)
source_test_loader = image_tensors.image_loader(image_tensors.grey_tensor(source_test.x), source_test.y, 500)
source_acc_before = training.evaluate(source.model, source_test_loader)["accuracy"]
target_constant = constant_baseline(target_test.y, "accuracy")  # always answering the commonest class
source_constant = constant_baseline(source_test.y, "accuracy")
print(f"source model: {'from the cache' if source.cached else 'trained now'}; "
      f"source-task test accuracy {source_acc_before:.3f} on {len(source_test)} images "
      f"(constant predictor: {source_constant:.3f}); target test: constant predictor {target_constant:.3f}")
print("stages, input to output:", [name for name, _ in source.model.stages()])

# %% [markdown]
# ## 2. The update rule, by hand and by PyTorch
#
# One step of gradient descent with weight decay λ and learning rate η is
#
# $$\theta \leftarrow \theta - \eta\,\nabla_\theta L(\theta) - \eta\lambda\,\theta ,$$
#
# the gradient step on the loss plus a shrink towards zero: it is gradient descent on
# $L(\theta) + \tfrac{\lambda}{2}\lVert\theta\rVert^2$. `torch.optim.SGD(weight_decay=λ)` claims to do
# exactly this (without momentum). Check it on the real network and a real batch of target images:

# %%
eta, lam = 0.05, 0.01
check_batch = next(iter(image_tensors.image_loader(image_tensors.grey_tensor(target_train.x[:64]), target_train.y[:64], 64)))
by_hand = copy.deepcopy(source.model).eval()  # eval: batch norm uses fixed statistics, gradients are reproducible
by_torch = copy.deepcopy(source.model).eval()

loss = nn.functional.cross_entropy(by_hand(check_batch[0]), check_batch[1])
grads = torch.autograd.grad(loss, list(by_hand.parameters()))
with torch.no_grad():
    for theta, g in zip(by_hand.parameters(), grads):
        theta -= eta * g + eta * lam * theta  # θ ← θ − η∇L − ηλθ

optimizer = torch.optim.SGD(by_torch.parameters(), lr=eta, weight_decay=lam)
nn.functional.cross_entropy(by_torch(check_batch[0]), check_batch[1]).backward()
optimizer.step()
sgd_update_max_abs_diff = max((a - b).abs().max().item() for a, b in zip(by_hand.parameters(), by_torch.parameters()))
print(f"largest difference between the hand-written update and torch.optim.SGD: {sgd_update_max_abs_diff:.2e} "
      f"(over {sum(p.numel() for p in by_hand.parameters()):,} parameters)")

# %% [markdown]
# **Why AdamW decouples it.** Adam divides each gradient by a running estimate of its size,
# $\hat m/(\sqrt{\hat v}+\epsilon)$. Put the decay into the gradient (`torch.optim.Adam(weight_decay=λ)`,
# i.e. an L2 penalty) and it is divided too: a weight with large gradients is hardly decayed, a weight
# with tiny gradients is pushed to zero at the full learning rate. AdamW (Loshchilov & Hutter, 2019)
# applies the decay *outside* the adaptive step: θ ← θ − ηλθ − η·m̂/(√v̂ + ε), the same relative
# shrink for every weight. Its first step, by hand, against `torch.optim.AdamW`:

# %%
theta0 = torch.randn(1000, generator=torch.Generator().manual_seed(lesson.seed))
g = torch.randn(1000, generator=torch.Generator().manual_seed(lesson.seed + 1))
beta1, beta2, eps = 0.9, 0.999, 1e-8
m_hat = (1 - beta1) * g / (1 - beta1)  # bias-corrected first moment after one step: g itself
v_hat = (1 - beta2) * g**2 / (1 - beta2)  # bias-corrected second moment: g²
adamw_by_hand = theta0 - eta * lam * theta0 - eta * m_hat / (v_hat.sqrt() + eps)
theta = theta0.clone().requires_grad_(True)
theta.grad = g.clone()
torch.optim.AdamW([theta], lr=eta, weight_decay=lam, betas=(beta1, beta2), eps=eps).step()
adamw_update_max_abs_diff = (adamw_by_hand - theta.detach()).abs().max().item()
print(f"AdamW by hand vs torch.optim.AdamW: largest difference {adamw_update_max_abs_diff:.2e}")

# %% [markdown]
# A small illustration of the difference (two weights, both starting at 1; the first gets large noisy
# gradients, the second none, as an unused feature would), `demo_steps` steps with learning rate
# `demo_lr` and decay `demo_lam`:

# %%
demo_steps, demo_lr, demo_lam = 300, 0.01, 0.1


def final_weights(optimizer_class) -> list[float]:
    """Two weights after demo_steps steps: one with noisy gradients of size ~10, one with no gradient at all."""
    w = torch.ones(2, requires_grad=True)
    opt = optimizer_class([w], lr=demo_lr, weight_decay=demo_lam)
    noise = torch.Generator().manual_seed(0)
    for _ in range(demo_steps):
        w.grad = torch.stack([10 * torch.randn((), generator=noise), torch.zeros(())])
        opt.step()
    return [round(v, 3) for v in w.detach().tolist()]


adam_weights, adamw_weights = final_weights(torch.optim.Adam), final_weights(torch.optim.AdamW)
pd.DataFrame({f"Adam(weight_decay={demo_lam}): L2 inside the adaptive step": adam_weights,
              f"AdamW(weight_decay={demo_lam}): decoupled decay": adamw_weights},
             index=["weight with large gradients", "weight with no gradient"]).T

# %% [markdown]
# Why the two differ: with Adam + L2 the "gradient" of a weight that never receives a loss gradient
# is only λθ, which Adam's normalisation blows up to size one, so that weight moves at Adam's full step
# size; a weight with large gradients is divided by a large √v̂, so its λθ term hardly counts. AdamW
# multiplies every weight by $(1 - \eta\lambda)$ at every step, gradient or not. With SGD the two
# formulations are the same thing, as the check above shows. What this run shows:

# %%
decay_factor = (1 - demo_lr * demo_lam) ** demo_steps  # AdamW's shrink of a weight that never gets a gradient
display(Markdown(" ".join([
    claims.claim("adam_l2_zeroes_unused_weight", adam_weights[1] < 0.05,
                 f"With Adam + L2 the weight with no gradient ends at {adam_weights[1]:.3f}: driven to zero.",
                 f"With Adam + L2 the weight with no gradient ends at {adam_weights[1]:.3f}: not driven to zero here."),
    claims.claim("adam_l2_spares_busy_weight", adam_weights[0] > adamw_weights[0],
                 f"The weight with large gradients keeps more under Adam + L2 ({adam_weights[0]:.3f}) than under "
                 f"AdamW ({adamw_weights[0]:.3f}): inside the adaptive step the decay hardly reaches it.",
                 f"The weight with large gradients does not keep more under Adam + L2 ({adam_weights[0]:.3f}) than "
                 f"under AdamW ({adamw_weights[0]:.3f}) in this run."),
    claims.claim("adamw_unused_weight_is_pure_decay", abs(adamw_weights[1] - decay_factor) < 1e-3,
                 f"AdamW's weight with no gradient ends at {adamw_weights[1]:.3f}, the pure decay "
                 f"(1 − ηλ)^n = (1 − {demo_lr}·{demo_lam})^{demo_steps} = {decay_factor:.3f}.",
                 f"AdamW's weight with no gradient ends at {adamw_weights[1]:.3f}, not the pure decay "
                 f"(1 − ηλ)^n = {decay_factor:.3f}: something else moved it."),
])))

# %% [markdown]
# ## 3. Six strategies on the same task and budget
#
# Every strategy starts from the same pretrained network with the same new head, sees the same `k`
# labelled images per class with the same augmentation (random shifts and mirror images), and takes
# the same number of SGD steps (`momentum=0.9`, learning rate decayed to zero with a cosine). Only what
# may change differs:
#
# | strategy | what trains |
# |---|---|
# | head only | the new head; the body is frozen (a linear probe on pretrained features) |
# | gradual unfreezing | the head first, then one more stage from the top every `steps/6` steps (ULMFiT, Howard & Ruder 2018) |
# | full fine-tuning | everything, at one learning rate |
# | layer-wise rates | everything; the head at `lr`, each stage below `decay` times slower (discriminative rates) |
# | weight decay | everything, plus the λ/2·‖θ‖² pull towards **zero** (`SGD(weight_decay=λ)`) |
# | L2-SP | everything, plus the α/2·‖θ − θ⁰‖² pull towards the **pretrained weights** (Li et al., 2018) |
#
# The helpers are short; here are the layer-wise groups and the L2-SP penalty:

# %%
print(inspect.getsource(parameter.layerwise_param_groups).split('"""')[-1].strip())
print()
print(inspect.getsource(parameter.l2_sp_penalty).split('"""')[-1].strip())

# %%
STRATEGIES = ["head only", "gradual unfreezing", "full fine-tuning", "layer-wise rates", "weight decay", "L2-SP"]
for name, rate in zip(["head", "layer4", "layer3", "layer2", "layer1", "stem"],
                      [g["lr"] for g in parameter.layerwise_param_groups(source.model.stages(), lr, decay)]):
    print(f"layer-wise rate of {name:6s}: {rate:.5f}")
print("gradual unfreezing (stages frozen, steps):", parameter.unfreezing_plan(6, settings["steps"]))


def target_loader(run_seed: int):
    """k labelled target images per class, shuffled and augmented, in batches of up to 50."""
    labelled = datasets.sample_per_class(target_train, k, seed=run_seed)
    return image_tensors.image_loader(image_tensors.grey_tensor(labelled.x), labelled.y, 50, augment=True, shuffle=True,
                               seed=run_seed)


def run_strategy(name: str, run_seed: int) -> tuple[dict, small_resnet.SmallResNet, nn.Module]:
    """Transfer the source network with one strategy; its row, the trained model and the old source head."""
    started = time.perf_counter()
    torch.manual_seed(run_seed)
    model = copy.deepcopy(source.model)
    source_head = small_resnet.new_head(model, len(source_model.TARGET_CLASSES), seed=run_seed)
    start = {key: value for key, value in parameter.snapshot(model).items() if not key.startswith("fc.")}
    stages = model.stages()
    groups = parameter.layerwise_param_groups(stages, lr, decay) if name == "layer-wise rates" else model.parameters()
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=strength if name == "weight decay" else 0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings["steps"])
    loader = target_loader(run_seed)
    if name == "gradual unfreezing":
        for n_frozen, n_steps in parameter.unfreezing_plan(len(stages), settings["steps"]):
            parameter.freeze_stages(stages, n_frozen)
            training.train_steps(model, loader, optimizer, n_steps, scheduler=schedule)
    else:
        if name == "head only":
            parameter.freeze_stages(stages, len(stages) - 1)
        # L2-SP: α on the pretrained weights, the same strength as plain decay (β) on the new head
        step = parameter.l2_sp_step(start, alpha=strength, beta=strength) if name == "L2-SP" else training.supervised_step
        training.train_steps(model, loader, optimizer, settings["steps"], step=step, scheduler=schedule)
    row = {"strategy": name, "seed": run_seed,
           "val_acc": training.evaluate(model, target_val_loader)["accuracy"],
           "target_acc": training.evaluate(model, target_test_loader)["accuracy"],
           "source_acc_after": training.evaluate(small_resnet.WithHead(model, source_head), source_test_loader)["accuracy"],
           "trainable_params": count_parameters(model, trainable_only=True),
           "distance_from_pretrained": parameter.distance_from(model, start),
           "seconds": time.perf_counter() - started}
    return row, model, source_head


rows, trained = [], {}
grid = [(name, lesson.seed + s) for s in range(settings["seeds"]) for name in STRATEGIES]
# the runs are independent and one run keeps only part of two cores busy: run them side by side, one per core
results = run_side_by_side(run_strategy, grid, device=lesson.device, desc="strategies × seeds")
for (name, run_seed), (row, model, source_head) in zip(grid, results):
    rows.append(row)
    if run_seed == lesson.seed:
        trained[name] = (model, source_head)
runs = pd.DataFrame(rows)
table = runs.groupby("strategy", sort=False).mean(numeric_only=True).drop(columns="seed")
table.insert(1, "target_acc_std", runs.groupby("strategy", sort=False)["target_acc"].std())
table.round(3)

# %%
fig, ax = plt.subplots(figsize=(6.4, 4))
for name, row in table.iterrows():
    ax.scatter(row.target_acc, row.source_acc_after, s=60)
    ax.annotate(name, (row.target_acc, row.source_acc_after), textcoords="offset points", xytext=(5, 4), fontsize=9)
ax.axhline(source_acc_before, color="grey", linestyle="--", label=f"source accuracy before ({source_acc_before:.3f})")
ax.set(xlabel=f"target test accuracy ({k} labels per class)", ylabel="source test accuracy after",
       title=f"Learning the new task vs keeping the old one ({settings['seeds']} seed(s), {settings['steps']} steps)")
ax.legend(loc="lower left", fontsize="small")
plt.show()

# %% [markdown]
# ### Reading the table
#
# What to expect from the mechanics: **head only** cannot forget, because the body does not change and
# `training.fit` (through `training.train_mode`) keeps frozen batch-norm layers in eval mode, so even
# their running statistics stay put; but it can only re-weight features tuned to tell a T-shirt from a
# coat. **Full fine-tuning** lets every weight follow the target loss, so nothing protects the source
# task. **Gradual unfreezing** trains the lower stages only in the last phases, **layer-wise rates** move
# them slowly from the first step on. **L2-SP** pulls towards θ⁰, **weight decay** towards zero, that is
# *away* from θ⁰. Whether this run bears these expectations out, decided by its own numbers (means over
# seeds; a comparison needs at least three seeds to call a winner):

# %%
per_seed = {name: runs[runs.strategy == name].sort_values("seed") for name in STRATEGIES}
target_of = {name: per_seed[name].target_acc.tolist() for name in STRATEGIES}
source_of = {name: per_seed[name].source_acc_after.tolist() for name in STRATEGIES}
body_strategies = STRATEGIES[1:]
# Compare every seed with the start: the mean of three equal floats need not equal them in floating point.
head_only_kept_source = all(a == source_acc_before for a in source_of["head only"])
# The strategy a practitioner would pick is the one with the best *validation* accuracy; its test score is reported.
picked = table.val_acc.idxmax()
display(Markdown("\n".join(f"- {text}" for text in [
    f"Constant predictor on the target test set: {target_constant:.3f}; on the source test set: {source_constant:.3f}.",
    claims.claim("head_only_forgets_nothing", head_only_kept_source,
                 f"Head only keeps the source accuracy at exactly {source_acc_before:.3f} on every seed: it forgets nothing.",
                 f"Head only changes the source accuracy ({summarize(source_of['head only'])} vs {source_acc_before:.3f} "
                 f"before): something in the frozen body moved."),
    claims.claim("picked_on_validation_trains_body", picked != "head only",
                 f"Picked on validation (mean validation accuracy over {settings['seeds']} seed(s)): **{picked}** "
                 f"({table.loc[picked, 'val_acc']:.3f}); its test accuracy is {summarize(target_of[picked])}.",
                 f"Picked on validation: head only ({table.loc[picked, 'val_acc']:.3f}); its test accuracy is "
                 f"{summarize(target_of[picked])}: training the body did not pay on validation."),
    "Target, full fine-tuning vs head only: "
    + claims.comparison("full_vs_head_target", compare(target_of["full fine-tuning"], target_of["head only"],
                                                       "full fine-tuning", "head only")),
    *([] if picked == "full fine-tuning" else [
        "Target, the validation pick vs full fine-tuning: "
        + claims.comparison("picked_vs_full_target", compare(target_of[picked], target_of["full fine-tuning"],
                                                             picked, "full fine-tuning"))]),
    claims.claim("full_fine_tuning_forgets", table.loc["full fine-tuning", "source_acc_after"] < source_acc_before - 0.1,
                 f"Full fine-tuning drops the source accuracy from {source_acc_before:.3f} to "
                 f"{table.loc['full fine-tuning', 'source_acc_after']:.3f}: transfer does not keep the source performance.",
                 f"Full fine-tuning keeps most of the source accuracy ({source_acc_before:.3f} → "
                 f"{table.loc['full fine-tuning', 'source_acc_after']:.3f})."),
    "Source kept, gradual unfreezing vs full fine-tuning: "
    + claims.comparison("unfreezing_vs_full_source", compare(source_of["gradual unfreezing"], source_of["full fine-tuning"],
                                                             "gradual unfreezing", "full fine-tuning"), "source accuracy"),
    "Target, gradual unfreezing vs full fine-tuning: "
    + claims.comparison("unfreezing_vs_full_target", compare(target_of["gradual unfreezing"], target_of["full fine-tuning"],
                                                             "gradual unfreezing", "full fine-tuning")),
    "Source kept, layer-wise rates vs full fine-tuning: "
    + claims.comparison("layerwise_vs_full_source", compare(source_of["layer-wise rates"], source_of["full fine-tuning"],
                                                            "layer-wise rates", "full fine-tuning"), "source accuracy"),
    claims.claim("l2sp_nearer_pretrained", all(per_seed["L2-SP"].distance_from_pretrained.values
                                               < per_seed["weight decay"].distance_from_pretrained.values),
                 f"L2-SP ends nearer the pretrained weights than weight decay on each of the {settings['seeds']} seed(s) "
                 f"(mean distance {table.loc['L2-SP', 'distance_from_pretrained']:.2f} vs "
                 f"{table.loc['weight decay', 'distance_from_pretrained']:.2f}).",
                 f"L2-SP does not end nearer the pretrained weights than weight decay on every seed "
                 f"(mean distance {table.loc['L2-SP', 'distance_from_pretrained']:.2f} vs "
                 f"{table.loc['weight decay', 'distance_from_pretrained']:.2f})."),
    "Source kept, L2-SP vs weight decay: "
    + claims.comparison("l2sp_vs_decay_source", compare(source_of["L2-SP"], source_of["weight decay"],
                                                        "L2-SP", "weight decay"), "source accuracy"),
    "Target, L2-SP vs weight decay: "
    + claims.comparison("l2sp_vs_decay_target", compare(target_of["L2-SP"], target_of["weight decay"],
                                                        "L2-SP", "weight decay")),
])))

# %% [markdown]
# ## 4. Forgetting, looked at closely
#
# Part of what a network "knows" is not in its weights. Batch norm normalises each channel with a
# running mean and variance collected *during training*; after fine-tuning they describe sandals and
# bags, not T-shirts and coats. Two measurements separate the statistics from the weights:
#
# 1. **Drift without learning.** Take the pretrained network, leave every weight as it is, and only run
#    the target images through it in train mode (no gradient, no optimizer step). This is what
#    "head only" would do if frozen batch-norm layers were left in train mode.
# 2. **Recalibration.** For each fine-tuned network, re-estimate the batch-norm statistics on source
#    images (`training.recalibrate_batchnorm`) and ask the source question again. What comes back was
#    lost through the statistics; what does not was lost in the weights.

# %%
drifted = copy.deepcopy(source.model)
drifted.train()  # nothing is frozen, so batch norm updates its running statistics
with torch.no_grad():
    for _ in range(5):
        for x, _ in target_loader(lesson.seed):
            drifted(x)
weights_changed = max((a - b).abs().max().item() for a, b in zip(drifted.parameters(), source.model.parameters()))
drift_source_acc = training.evaluate(drifted, source_test_loader)["accuracy"]
print(f"no weight changed (largest change {weights_changed}); source accuracy {source_acc_before:.3f} → "
      f"{drift_source_acc:.3f} from batch-norm statistics alone")

# %%
source_images = datasets.sample_n(source_model.class_subset(fashion.train, source_model.SOURCE_CLASSES),
                                  settings["joint_source"], seed=lesson.seed)
source_image_loader = image_tensors.image_loader(image_tensors.grey_tensor(source_images.x), source_images.y, 500)
recalibrated = {}
for name, (model, source_head) in trained.items():
    copy_ = copy.deepcopy(model)
    training.recalibrate_batchnorm(copy_, source_image_loader)
    recalibrated[name] = training.evaluate(small_resnet.WithHead(copy_, source_head), source_test_loader)["accuracy"]
forgetting = pd.DataFrame({"source before": source_acc_before,
                           "source after": runs[runs.seed == lesson.seed].set_index("strategy").source_acc_after,
                           "after, statistics re-estimated on source images": pd.Series(recalibrated)})
forgetting.round(3)

# %% [markdown]
# How to read the two measurements: any change of source accuracy in the first printout comes from
# the statistics alone, since no weight moved (which is why frozen layers must keep their batch norm
# in eval mode); in the table, what recalibration brings back was lost through the statistics, and the
# rest is forgetting in the weights themselves. What this run shows (the table is the first seed's):

# %%
body_after = {n: forgetting.loc[n, "source after"] for n in body_strategies}
body_recal = {n: recalibrated[n] for n in body_strategies}
recovered_share = {n: (body_recal[n] - body_after[n]) / (source_acc_before - body_after[n])
                   if source_acc_before > body_after[n] else float("nan") for n in body_strategies}
display(Markdown("\n".join(f"- {text}" for text in [
    claims.claim("statistics_alone_cost_little", 0 <= source_acc_before - drift_source_acc < 0.05,
                 f"Target statistics alone, with the pretrained weights, move the source accuracy from "
                 f"{source_acc_before:.3f} to {drift_source_acc:.3f}: a small cost.",
                 f"Target statistics alone, with the pretrained weights, move the source accuracy from "
                 f"{source_acc_before:.3f} to {drift_source_acc:.3f}: not a small cost."),
    claims.claim("recalibration_recovers_part", all(body_after[n] < body_recal[n] < source_acc_before for n in body_strategies),
                 "For every strategy that trains the body, re-estimating the statistics on source images recovers part "
                 "of the lost source accuracy but not all of it (share recovered: "
                 + ", ".join(f"{n} {recovered_share[n]:.0%}" for n in body_strategies) + ").",
                 "Re-estimating the statistics does not recover part-but-not-all of the loss for every strategy "
                 "that trains the body (after → recalibrated: "
                 + ", ".join(f"{n} {body_after[n]:.3f} → {body_recal[n]:.3f}" for n in body_strategies) + ")."),
])))

# %% [markdown]
# Practical consequences, whatever the ranking: when a network must keep serving its old task, keep a
# copy of the statistics (or of the whole network) per task, and *measure* the old task after
# fine-tuning instead of assuming it survived.
#
# ## 5. Parameter sharing: one encoder, two heads
#
# The strongest way to keep a source task is to keep training on it. **Hard parameter sharing** uses
# one encoder for both tasks, with one head per task, and minimises the sum of the two losses; each
# step sees a batch of source images and a batch of target images, passed through the encoder together
# so that batch norm learns statistics for the mixture it will be evaluated on (`parameter.joint_step`). The
# alternative is **two separate models**: the untouched source network for the old task, a fully
# fine-tuned copy for the new one (the "full fine-tuning" row above).

# %%
def joint_training(run_seed: int) -> tuple[float, float, int, float]:
    """One shared encoder, source and target heads, trained on both tasks at once."""
    started = time.perf_counter()
    torch.manual_seed(run_seed)
    encoder = copy.deepcopy(source.model)  # its own fc stays unused: the heads live next to it
    heads = {"source": copy.deepcopy(source.model.fc),
             "target": nn.Linear(encoder.num_features, len(source_model.TARGET_CLASSES))}
    shared = parameter.SharedEncoder(encoder, heads)
    source_loader = image_tensors.image_loader(image_tensors.grey_tensor(source_images.x), source_images.y, 50, augment=True,
                                        shuffle=True, seed=run_seed)
    optimizer = torch.optim.SGD(shared.parameters(), lr=lr, momentum=0.9)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings["steps"])
    training.train_steps(shared, loaders.PairedLoader(source_loader, target_loader(run_seed)), optimizer,
                       settings["steps"], step=parameter.joint_step, scheduler=schedule)
    target_acc = training.evaluate(shared.for_task("target"), target_test_loader)["accuracy"]
    source_acc = training.evaluate(shared.for_task("source"), source_test_loader)["accuracy"]
    params = count_parameters(shared) - count_parameters(encoder.fc)  # the unused fc is not counted
    return target_acc, source_acc, params, time.perf_counter() - started


# side by side, one core per run, like the fine-tuning runs above: their seconds compare
joint_runs = pd.DataFrame(run_side_by_side(joint_training, [(lesson.seed + s,) for s in range(settings["seeds"])],
                                           device=lesson.device, desc="joint training"),
                          columns=["target_acc", "source_acc", "params", "seconds"])
joint_target_acc, joint_source_acc = float(joint_runs.target_acc.mean()), float(joint_runs.source_acc.mean())
shared_params, joint_seconds = int(joint_runs.params.iloc[0]), float(joint_runs.seconds.mean())
full_row = table.loc["full fine-tuning"]  # seed means, paired with the joint runs by seed below
separate_params = count_parameters(source.model) + count_parameters(trained["full fine-tuning"][0])
sharing = pd.DataFrame({
    "parameters": [separate_params, shared_params],
    "target accuracy": [full_row.target_acc, joint_target_acc],
    "source accuracy": [source_acc_before, joint_source_acc],
    "seconds": [full_row.seconds, joint_seconds]},
    index=["two separate models (pretrained + fine-tuned copy)", "one shared encoder, two heads (joint)"])
sharing["target constant predictor"] = target_constant
sharing["source constant predictor"] = source_constant
sharing.round(3)

# %% [markdown]
# The shared encoder never stops training on the source task, so it has a reason to keep it; the
# source images are also extra training signal for the shared layers. The price: every step processes
# two batches, and the source data must still be at hand. What this run shows (paired by seed with the
# full fine-tuning runs above):

# %%
display(Markdown("\n".join(f"- {text}" for text in [
    claims.claim("shared_fewer_params", shared_params < separate_params,
                 f"The shared encoder has {shared_params / separate_params:.0%} of the parameters of two models.",
                 f"The shared encoder has {shared_params / separate_params:.0%} of the parameters of two models: no saving."),
    f"Source, shared encoder vs plain fine-tuning (untouched network {source_acc_before:.3f}, constant predictor "
    f"{source_constant:.3f}): "
    + claims.comparison("shared_vs_full_source", compare(joint_runs.source_acc, source_of["full fine-tuning"],
                                                         "shared encoder", "plain fine-tuning"), "source accuracy"),
    "Target, shared encoder vs the separate fine-tuned copy: "
    + claims.comparison("shared_vs_separate_target", compare(joint_runs.target_acc, target_of["full fine-tuning"],
                                                             "shared encoder", "separate copy")),
    claims.claim("shared_slower", joint_seconds > full_row.seconds,
                 f"Training it took longer: {joint_seconds:.1f} s vs {full_row.seconds:.1f} s for the fine-tuned copy.",
                 f"Training it did not take longer here: {joint_seconds:.1f} s vs {full_row.seconds:.1f} s for the "
                 f"fine-tuned copy."),
])))

# %% [markdown]
# This is multi-task learning, taken further in lesson 09.
#
# ## 6. Exercises
#
# **Exercise 1 (warm-up).** Write one step of SGD with weight decay for a tensor `theta` with gradient
# `grad` (no momentum): the update rule of section 2, which every strategy above applies at each step.
# The check compares it with `torch.optim.SGD` itself, including no decay, a zero gradient (pure
# decay) and a zero learning rate.

# %%
# NBVAL_CHECK_OUTPUT
from transfer_utils.core.exercises import check_prediction, direction
from transfer_utils.solutions import lesson04 as solutions


def my_sgd_step(theta: torch.Tensor, grad: torch.Tensor, lr: float, weight_decay: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    return theta - lr * grad - lr * weight_decay * theta
    ### END SOLUTION


rng = torch.Generator().manual_seed(0)
sgd_cases = [(torch.randn(5, generator=rng), torch.randn(5, generator=rng), 0.1, 0.01),
             (torch.randn(3, 2, generator=rng), torch.randn(3, 2, generator=rng), 1.0, 0.5),
             (torch.randn(4, generator=rng), torch.randn(4, generator=rng), 0.1, 0.0),  # no decay
             (torch.randn(4, generator=rng), torch.zeros(4), 0.1, 0.5),  # no gradient: only the decay acts
             (torch.randn(1, generator=rng), torch.randn(1, generator=rng), 0.0, 0.5)]  # zero learning rate
check_function(my_sgd_step, solutions.sgd_step, sgd_cases, name="exercise 1 (SGD with weight decay)")

# %% [markdown]
# **Exercise 2 (warm-up).** Gradual unfreezing's schedule: for a network of `n_stages` stages (the
# head is the last) and `total_steps` steps, return the phases as `(n_frozen, steps)` pairs. The first
# phase trains the head alone (all other stages frozen), each next phase unfreezes one more stage from
# the top, and the last phase trains everything. Split the steps as evenly as possible, the earlier
# phases taking the remainder. The check compares it with `parameter.unfreezing_plan`, including steps
# that do not divide evenly, one step per phase and a network of a single stage.

# %%
# NBVAL_CHECK_OUTPUT
def my_unfreezing_plan(n_stages: int, total_steps: int) -> list[tuple[int, int]]:
    ### BEGIN SOLUTION
    base, extra = divmod(total_steps, n_stages)
    return [(n_stages - 1 - i, base + (1 if i < extra else 0)) for i in range(n_stages)]
    ### END SOLUTION


check_function(my_unfreezing_plan, parameter.unfreezing_plan,
               [(6, 64),  # 64 steps do not split evenly into 6 phases
                (3, 7), (2, 1000),
                (4, 4),  # one step per phase
                (1, 5)],  # a single stage: one phase, nothing frozen
               name="exercise 2 (unfreezing plan)")

# %% [markdown]
# **Exercise 3 (apply).** Where did fine-tuning move the network? Write the distance ‖θ − θ⁰‖ from the
# pretrained weights over the parameters named in `start` whose names begin with `prefix` (`"layer4."`
# for the top block, `"conv1."` for the first convolution, `""` for all of them; a prefix that selects
# nothing gives zero). The `distance_from_pretrained` column of section 3 is this distance over every
# pretrained parameter; per stage it shows which layers a strategy actually changed. The check runs it on the
# networks trained above, against a reference built on `parameter.distance_from`, including the
# untouched pretrained network, the head-only network (a frozen body) and the new head, which is not in
# `start`.

# %%
# NBVAL_CHECK_OUTPUT
def my_stage_distance(model: nn.Module, start: dict[str, torch.Tensor], prefix: str) -> float:
    ### BEGIN SOLUTION
    params = dict(model.named_parameters())
    total = sum(float(((params[name].detach() - w0) ** 2).sum()) for name, w0 in start.items()
                if name.startswith(prefix) and name in params)
    return total ** 0.5
    ### END SOLUTION


pretrained_start = {key: value for key, value in parameter.snapshot(source.model).items() if not key.startswith("fc.")}
distance_cases = [(trained[name][0], pretrained_start, prefix)
                  for name in ("full fine-tuning", "layer-wise rates") for prefix in ("layer4.", "layer1.", "conv1.")]
distance_cases += [(trained["L2-SP"][0], pretrained_start, ""),  # every pretrained parameter
                   (source.model, pretrained_start, "layer4."),  # the untouched network: zero
                   (trained["head only"][0], pretrained_start, "layer2."),  # a frozen body: zero
                   (trained["full fine-tuning"][0], pretrained_start, "fc.")]  # the new head is not in start: zero
check_function(my_stage_distance, solutions.stage_distance, distance_cases, name="exercise 3 (distance per stage)",
               rtol=1e-4)

# %% [markdown]
# **Exercise 4 (experiment).** L2-SP's strength α decides how hard the weights are pulled back towards
# the pretrained ones. The cell below trains the L2-SP strategy once more, for the first seed, with the
# same steps and data, but with α = `strong_alpha` (a hundred times the lesson's default `strength`) on
# the pretrained weights. Predict before you run: compared with the L2-SP run above, will the accuracy
# on the **source** task after fine-tuning be "higher", "lower" or "about the same"? Put your prediction
# in `my_prediction`, then run the cell below. This is the trade-off of model-based transfer: how far
# the parameters may move decides both what the network learns and what it forgets.

# %%
def my_prediction() -> str:
    ### BEGIN SOLUTION
    return "higher"
    ### END SOLUTION


# %%
strong_alpha = 1.0


def l2_sp_run(alpha: float, run_seed: int) -> tuple[float, float, float]:
    """The L2-SP strategy of section 3 with pull strength ``alpha``: source, target accuracy, distance moved."""
    torch.manual_seed(run_seed)
    model = copy.deepcopy(source.model)
    source_head = small_resnet.new_head(model, len(source_model.TARGET_CLASSES), seed=run_seed)
    start = {key: value for key, value in parameter.snapshot(model).items() if not key.startswith("fc.")}
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings["steps"])
    training.train_steps(model, target_loader(run_seed), optimizer, settings["steps"],
                         step=parameter.l2_sp_step(start, alpha=alpha, beta=strength), scheduler=schedule)
    return (training.evaluate(small_resnet.WithHead(model, source_head), source_test_loader)["accuracy"],
            training.evaluate(model, target_test_loader)["accuracy"], parameter.distance_from(model, start))


lesson_run = runs[(runs.strategy == "L2-SP") & (runs.seed == lesson.seed)].iloc[0]
before = lesson_run.source_acc_after
after, strong_target, strong_distance = l2_sp_run(strong_alpha, lesson.seed)
outcome = direction(before, after, margin=0.03)
check_prediction(my_prediction, outcome, name="exercise 4 (experiment: L2-SP strength)",
                 choices=["higher", "lower", "about the same"],
                 evidence=f"source accuracy {before:.3f} with α = {strength} → {after:.3f} with α = {strong_alpha} "
                          f"(untouched network {source_acc_before:.3f}); target accuracy "
                          f"{lesson_run.target_acc:.3f} → {strong_target:.3f}; distance from the pretrained weights "
                          f"{lesson_run.distance_from_pretrained:.2f} → {strong_distance:.2f}")

# %% [markdown]
# ## 7. Results

# %%
strategy_rows = [{"strategy": name, "val_acc": row.val_acc, "target_acc": row.target_acc, "target_acc_std": float(np.nan_to_num(row.target_acc_std)),
                  "source_acc_after": row.source_acc_after, "trainable_params": int(row.trainable_params),
                  "distance_from_pretrained": row.distance_from_pretrained, "seconds": row.seconds}
                 for name, row in table.iterrows()]
summary_start = len(claims.records)  # the claims from here on make up the summary


def stated(what: str, name: str, result, metric: str = "accuracy") -> str:
    """A comparison's sentence, recorded with what it compares in front."""
    claims.comparison(name, result, metric)
    claims.records[-1]["text"] = f"{what}: {claims.records[-1]['text']}"
    return claims.records[-1]["text"]


claims.claim("summary_head_only", head_only_kept_source,
             f"Training only the head forgot nothing (source {source_acc_before:.3f} kept); its target accuracy is "
             f"{summarize(target_of['head only'])} (constant predictor {target_constant:.3f}).",
             f"Training only the head changed the source accuracy ({source_acc_before:.3f} → "
             f"{summarize(source_of['head only'])}): something in the frozen body moved.")
stated("Target accuracy, full fine-tuning vs head only", "summary_full_vs_head_target",
       compare(target_of["full fine-tuning"], target_of["head only"], "full fine-tuning", "head only"))
claims.claim("summary_fine_tuning_forgets", table.loc["full fine-tuning", "source_acc_after"] < source_acc_before - 0.1,
             f"Fine-tuning everything forgot much of the source task ({source_acc_before:.3f} → "
             f"{table.loc['full fine-tuning', 'source_acc_after']:.3f}): \"transfer keeps the source performance\" held "
             f"only for what stayed frozen.",
             f"Fine-tuning everything kept most of the source task ({source_acc_before:.3f} → "
             f"{table.loc['full fine-tuning', 'source_acc_after']:.3f}).")
claims.claim("summary_validation_pick", True,
             f"The strategy picked on validation, {picked}, scores {summarize(target_of[picked])} on the test set.",
             "")
if picked != "full fine-tuning":
    stated("Target accuracy, the validation pick vs full fine-tuning", "summary_picked_vs_full_target",
           compare(target_of[picked], target_of["full fine-tuning"], picked, "full fine-tuning"))
stated("Source accuracy kept", "summary_unfreezing_vs_full_source",
                  compare(source_of["gradual unfreezing"], source_of["full fine-tuning"],
                          "gradual unfreezing", "full fine-tuning"), "source accuracy")
stated("Source accuracy kept", "summary_layerwise_vs_full_source",
                  compare(source_of["layer-wise rates"], source_of["full fine-tuning"],
                          "layer-wise rates", "full fine-tuning"), "source accuracy")
stated("Source accuracy kept", "summary_l2sp_vs_decay_source",
                  compare(source_of["L2-SP"], source_of["weight decay"], "L2-SP", "weight decay"), "source accuracy")
claims.claim("summary_batchnorm_share", all(body_after[n] < body_recal[n] for n in body_strategies),
             "Re-estimating batch-norm statistics on source images brought back part of the forgotten source accuracy "
             "for every strategy that trains the body: part of forgetting is in the statistics.",
             "Re-estimating batch-norm statistics did not bring back source accuracy for every strategy that trains "
             "the body.")
sharing_result = compare(joint_runs.source_acc, source_of["full fine-tuning"], "shared encoder", "plain fine-tuning")
claims.claim("summary_sharing", sharing_result.winner == "shared encoder" and shared_params < separate_params,
             f"One shared encoder kept the source task ({summarize(joint_runs.source_acc)}, clearly above plain "
             f"fine-tuning's {summarize(source_of['full fine-tuning'])}) with {shared_params / separate_params:.0%} "
             f"of the parameters of two models, and reached {summarize(joint_runs.target_acc)} on the target "
             f"(separate copy {summarize(target_of['full fine-tuning'])}).",
             f"One shared encoder: source {joint_source_acc:.3f}, target {joint_target_acc:.3f}, "
             f"{shared_params / separate_params:.0%} of the parameters; it did not keep the source task clearly better "
             f"than plain fine-tuning ({full_row.source_acc_after:.3f}).")
lesson.save_metrics({
    "k": k, "steps": settings["steps"], "seeds": settings["seeds"], "picked_on_validation": [picked],
    "picked_target_acc": float(table.loc[picked, "target_acc"]),
    "source_acc_before": source_acc_before,
    "strategies": strategy_rows,
    "sgd_update_max_abs_diff": sgd_update_max_abs_diff,
    "adamw_update_max_abs_diff": adamw_update_max_abs_diff,
    "drift_source_acc": drift_source_acc,
    "recalibrated_source_acc": [{"strategy": n, "source_acc": a} for n, a in recalibrated.items()],
    "joint_target_acc": joint_target_acc, "joint_source_acc": joint_source_acc,
    "shared_params": shared_params, "separate_params": separate_params,
    "target_constant_acc": target_constant, "source_constant_acc": source_constant,
    "adamw_unused_weight": adamw_weights[1], "adamw_decay_factor": decay_factor,
    **claims.as_metrics(),
})
row = table.to_dict("index")
assert sgd_update_max_abs_diff < 1e-6 and adamw_update_max_abs_diff < 1e-6
assert head_only_kept_source  # a frozen body forgets nothing, on every seed
assert row["full fine-tuning"]["source_acc_after"] < source_acc_before - 0.1  # fine-tuning forgets
assert max(row[n]["target_acc"] for n in STRATEGIES[1:]) > row["head only"]["target_acc"] + 0.03
# every strategy learns the target task well above the constant predictor
assert min(row[n]["target_acc"] for n in STRATEGIES) > target_constant + lesson.pick(smoke=0.15, default=0.4)
assert abs(adamw_weights[1] - decay_factor) < 1e-3  # AdamW's unused weight is the pure decay, computed independently
# L2-SP stays nearer the pretrained weights than weight decay; with a full budget that keeps more source accuracy
assert row["L2-SP"]["distance_from_pretrained"] < row["weight decay"]["distance_from_pretrained"]
if lesson.profile != "smoke":
    assert row["L2-SP"]["source_acc_after"] > row["weight decay"]["source_acc_after"]
assert joint_source_acc > row["full fine-tuning"]["source_acc_after"] + 0.1 and shared_params < separate_params
if settings["seeds"] >= 3:  # the comparisons the summary states, decided over seeds
    assert sharing_result.winner == "shared encoder", sharing_result.sentence()
    assert compare(target_of["full fine-tuning"], target_of["head only"]).winner == "A", "fine-tuning should beat head only"

# %% [markdown]
# ## Summary and what next
#
# * Model-based transfer starts from pretrained parameters; the choice is which of them may move
#   (freezing, gradual unfreezing), how fast (layer-wise rates) and how far (L2-SP).
# * Forgetting can sit in the weights and in batch-norm statistics; measure the old task after
#   fine-tuning rather than assume it survived.
# * Hard parameter sharing trains one encoder on both tasks at once, at the cost of training on both.
# * θ ← θ − η∇L − ηλθ is exactly `SGD(weight_decay=λ)`; with Adam, put the decay outside the adaptive
#   step (AdamW).

# %%
display(Markdown(Claims(claims.records[summary_start:]).markdown("What this run showed")))

# %% [markdown]
# **Next:** [05 · Domain adaptation](05_domain_adaptation.ipynb) transfers when the *inputs* shift
# rather than the classes. [08 · ResNet image transfer](08_resnet_image_transfer.ipynb) asks which
# layers of this network transfer, and brings in an ImageNet CNN.
