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
# **Time.** smoke ≈ 0.8 min · default ≈ 4.1 min on a 2-core CPU (measured by `bench/lesson_times.py`).

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
from tqdm.auto import tqdm

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
from transfer_utils.core.exercises import check_function
from transfer_utils.models.parts import count_parameters
from transfer_utils.core.runtime import check_float, check_int, check_seed, start_lesson

lesson = start_lesson("04_model_based", seed=seed, device=device, profile=profile, metrics_path=metrics_path)
check_int("k", k, low=1, high=1000)
check_int("width", width, low=4, high=64)
check_float("lr", lr, low=1e-5, high=1.0)
check_float("decay", decay, low=0.01, high=1.0)
check_float("strength", strength, low=0.0, high=1.0)
plots.setup()
settings = lesson.pick(smoke={"steps": 60, "seeds": 1, "test": 1000, "joint_source": 1000},
                       default={"steps": 300, "seeds": 2, "test": 2000, "joint_source": 2000})
check_seed(seed, max(2, settings["seeds"]))  # runs use seed, seed + 1, ...
print(lesson, settings)

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
source_test_loader = image_tensors.image_loader(image_tensors.grey_tensor(source_test.x), source_test.y, 500)
source_acc_before = training.evaluate(source.model, source_test_loader)["accuracy"]
print(f"source model: {'from the cache' if source.cached else 'trained now'}; "
      f"source-task test accuracy {source_acc_before:.3f} on {len(source_test)} images")
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
# gradients, the second none, as an unused feature would). 300 steps with λ = 0.1:

# %%
def final_weights(optimizer_class) -> list[float]:
    """Two weights after 300 steps: one with noisy gradients of size ~10, one with no gradient at all."""
    w = torch.ones(2, requires_grad=True)
    opt = optimizer_class([w], lr=0.01, weight_decay=0.1)
    noise = torch.Generator().manual_seed(0)
    for _ in range(300):
        w.grad = torch.stack([10 * torch.randn((), generator=noise), torch.zeros(())])
        opt.step()
    return [round(v, 3) for v in w.detach().tolist()]


pd.DataFrame({"Adam(weight_decay=0.1): L2 inside the adaptive step": final_weights(torch.optim.Adam),
              "AdamW(weight_decay=0.1): decoupled decay": final_weights(torch.optim.AdamW)},
             index=["weight with large gradients", "weight with no gradient"]).T

# %% [markdown]
# With Adam + L2 the weight that never receives a gradient is driven to zero at Adam's full step size
# (its "gradient" is only λθ, which the normalisation blows up to size one), while the busy weight
# barely feels the decay. AdamW shrinks both by the same factor, (1 − ηλ)³⁰⁰ ≈ 0.74 in the absence
# of a gradient. With SGD the two formulations are the same thing, as the check above shows.
#
# ## 3. Six strategies on the same task and budget
#
# Every strategy starts from the same pretrained network with the same new head, sees the same `k`
# labelled images per class with the same augmentation (random shifts and mirror images), and takes
# the same number of SGD steps (momentum 0.9, learning rate decayed to zero with a cosine). Only what
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
           "target_acc": training.evaluate(model, target_test_loader)["accuracy"],
           "source_acc_after": training.evaluate(small_resnet.WithHead(model, source_head), source_test_loader)["accuracy"],
           "trainable_params": count_parameters(model, trainable_only=True),
           "distance_from_pretrained": parameter.distance_from(model, start),
           "seconds": time.perf_counter() - started}
    return row, model, source_head


rows, trained = [], {}
grid = [(name, lesson.seed + s) for s in range(settings["seeds"]) for name in STRATEGIES]
for name, run_seed in tqdm(grid, desc="strategies × seeds"):
    row, model, source_head = run_strategy(name, run_seed)
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
# ### 3.1 Reading the table
#
# * **Head only** cannot forget: the body does not change, and `training.fit` (through `training.train_mode`) keeps frozen
#   batch-norm layers in eval mode, so even their running statistics stay put. Its source accuracy is
#   exactly the one before. It is also the weakest on the target: features tuned to tell a T-shirt from
#   a coat are not enough to tell a sandal from a sneaker.
# * **Full fine-tuning** learns the target best or close to best and **forgets most of the source task**.
#   The sources' "transfer keeps the source performance" is false for fine-tuning: the network becomes a
#   target-task network.
# * **Gradual unfreezing** reaches about the same target accuracy with far less forgetting: the lower
#   stages train only in the last phases. **Layer-wise rates** sit in between: the lower stages move
#   slowly, but from the first step on.
# * **L2-SP vs weight decay** at the same strength: pulling towards the pretrained weights keeps more of
#   the source task than pulling towards zero (see the distance column: weight decay moves the weights
#   *away* from θ⁰). On the target they are close.
# * Differences of a point or two in target accuracy are within the seed spread (`target_acc_std`); the
#   forgetting differences are much larger than that.

# %%
best_target = table.target_acc.idxmax()
least_forgetting = table.drop(index="head only").source_acc_after.idxmax()
print(f"best target accuracy: {best_target} ({table.target_acc.max():.3f}); "
      f"least forgetting among strategies that train the body: {least_forgetting} "
      f"(source {table.loc[least_forgetting, 'source_acc_after']:.3f} vs {source_acc_before:.3f} before)")
print(f"full fine-tuning: source accuracy {source_acc_before:.3f} → {table.loc['full fine-tuning', 'source_acc_after']:.3f}; "
      f"L2-SP {table.loc['L2-SP', 'source_acc_after']:.3f} vs weight decay {table.loc['weight decay', 'source_acc_after']:.3f}")

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
# With the pretrained weights, target statistics alone cost only a little (first printout): the
# source accuracy moves, although no weight did, which is why frozen layers must keep their batch norm
# in eval mode. After fine-tuning, re-estimating the statistics on source images recovers a large share
# of the lost source accuracy for every strategy that trains the body, but not all of it: the rest is
# forgetting in the weights themselves. Practical consequences: when a network must keep serving its
# old task, keep a copy of the statistics (or of the whole network) per task, prefer gradual
# unfreezing or L2-SP, and *measure* the old task after fine-tuning instead of assuming it survived.
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


joint_target_acc, joint_source_acc, shared_params, joint_seconds = joint_training(lesson.seed)
full_row = runs[(runs.seed == lesson.seed) & (runs.strategy == "full fine-tuning")].iloc[0]
separate_params = count_parameters(source.model) + count_parameters(trained["full fine-tuning"][0])
sharing = pd.DataFrame({
    "parameters": [separate_params, shared_params],
    "target accuracy": [full_row.target_acc, joint_target_acc],
    "source accuracy": [source_acc_before, joint_source_acc],
    "seconds": [full_row.seconds, joint_seconds]},
    index=["two separate models (pretrained + fine-tuned copy)", "one shared encoder, two heads (joint)"])
sharing.round(3)

# %% [markdown]
# %%
print(f"shared encoder: {shared_params / separate_params:.0%} of the parameters of two models; target "
      f"{joint_target_acc:.3f} vs {full_row.target_acc:.3f} for the separate copy; source {joint_source_acc:.3f} "
      f"vs {source_acc_before:.3f} untouched and {full_row.source_acc_after:.3f} after plain fine-tuning")

# %% [markdown]
# The shared encoder answers both questions with half the parameters. It keeps most of the source
# accuracy, because it never stops training on the source task, and it learns the target about as
# well as the separate fine-tuned copy (the source images act as extra training signal for the shared
# layers). The price: every step processes two batches, so it takes longer, and the source data must
# still be at hand. This is multi-task learning, taken further in lesson 09.
#
# ## 6. Exercises
#
# **Exercise 1.** Write one step of SGD with weight decay for a tensor `theta` with gradient `grad`
# (no momentum). The check compares it with `torch.optim.SGD`.

# %%
# NBVAL_CHECK_OUTPUT
def my_sgd_step(theta: torch.Tensor, grad: torch.Tensor, lr: float, weight_decay: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    return theta - lr * grad - lr * weight_decay * theta
    ### END SOLUTION


def torch_sgd_step(theta: torch.Tensor, grad: torch.Tensor, lr: float, weight_decay: float) -> torch.Tensor:
    w = theta.clone().requires_grad_(True)
    w.grad = grad.clone()
    torch.optim.SGD([w], lr=lr, weight_decay=weight_decay).step()
    return w.detach()


rng = torch.Generator().manual_seed(0)
check_function(my_sgd_step, torch_sgd_step,
               [(torch.randn(5, generator=rng), torch.randn(5, generator=rng), 0.1, 0.01),
                (torch.randn(3, 2, generator=rng), torch.randn(3, 2, generator=rng), 1.0, 0.5)],
               name="exercise 1 (SGD with weight decay)")

# %% [markdown]
# **Exercise 2.** Layer-wise rates: given the stage names from input to output, the head's rate and
# the decay factor, return each stage's learning rate *in input-to-output order*.

# %%
# NBVAL_CHECK_OUTPUT
def my_layerwise_rates(stage_names: list[str], base_lr: float, decay: float) -> list[float]:
    ### BEGIN SOLUTION
    depth_from_top = range(len(stage_names) - 1, -1, -1)
    return [base_lr * decay ** d for d in depth_from_top]
    ### END SOLUTION


def reference_rates(stage_names: list[str], base_lr: float, decay: float) -> list[float]:
    groups = parameter.layerwise_param_groups([(n, nn.Linear(1, 1)) for n in stage_names], base_lr, decay)
    return [g["lr"] for g in reversed(groups)]


check_function(my_layerwise_rates, reference_rates,
               [(["stem", "layer1", "layer2", "layer3", "layer4", "head"], 0.05, 0.5), (["a", "b"], 1e-3, 0.1)],
               name="exercise 2 (layer-wise rates)")

# %% [markdown]
# **Exercise 3.** Write the L2-SP penalty α/2·Σ‖θ − θ⁰‖² over the parameters named in `start` (skip the
# others and the frozen ones). The check runs it on the networks trained above.

# %%
# NBVAL_CHECK_OUTPUT
def my_l2_sp(model: nn.Module, start: dict[str, torch.Tensor], alpha: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    total = sum(((p - start[name]) ** 2).sum() for name, p in model.named_parameters()
                if name in start and p.requires_grad)
    return 0.5 * alpha * total
    ### END SOLUTION


pretrained_start = {key: value for key, value in parameter.snapshot(source.model).items() if not key.startswith("fc.")}
check_function(my_l2_sp, lambda m, s, a: parameter.l2_sp_penalty(m, s, a),
               [(trained[name][0], pretrained_start, 0.1) for name in ("full fine-tuning", "L2-SP", "weight decay")],
               name="exercise 3 (L2-SP penalty)", rtol=1e-4)

# %% [markdown]
# ## 7. Results

# %%
strategy_rows = [{"strategy": name, "target_acc": row.target_acc, "target_acc_std": float(np.nan_to_num(row.target_acc_std)),
                  "source_acc_after": row.source_acc_after, "trainable_params": int(row.trainable_params),
                  "distance_from_pretrained": row.distance_from_pretrained, "seconds": row.seconds}
                 for name, row in table.iterrows()]
lesson.save_metrics({
    "k": k, "steps": settings["steps"], "seeds": settings["seeds"],
    "source_acc_before": source_acc_before,
    "strategies": strategy_rows,
    "sgd_update_max_abs_diff": sgd_update_max_abs_diff,
    "adamw_update_max_abs_diff": adamw_update_max_abs_diff,
    "drift_source_acc": drift_source_acc,
    "recalibrated_source_acc": [{"strategy": n, "source_acc": a} for n, a in recalibrated.items()],
    "joint_target_acc": joint_target_acc, "joint_source_acc": joint_source_acc,
    "shared_params": shared_params, "separate_params": separate_params,
})
row = table.to_dict("index")
assert sgd_update_max_abs_diff < 1e-6 and adamw_update_max_abs_diff < 1e-6
assert row["head only"]["source_acc_after"] == source_acc_before  # a frozen body forgets nothing
assert row["full fine-tuning"]["source_acc_after"] < source_acc_before - 0.1  # fine-tuning forgets
assert max(row[n]["target_acc"] for n in STRATEGIES[1:]) > row["head only"]["target_acc"] + 0.03
# L2-SP stays nearer the pretrained weights than weight decay; with a full budget that keeps more source accuracy
assert row["L2-SP"]["distance_from_pretrained"] < row["weight decay"]["distance_from_pretrained"]
if lesson.profile != "smoke":
    assert row["L2-SP"]["source_acc_after"] > row["weight decay"]["source_acc_after"]
assert joint_source_acc > row["full fine-tuning"]["source_acc_after"] + 0.1 and shared_params < separate_params

# %% [markdown]
# ## Summary and what next
#
# * Model-based transfer starts from pretrained parameters; the choice is which of them may move
#   (freezing, gradual unfreezing), how fast (layer-wise rates) and how far (L2-SP).
# * On the same budget, training only the head forgets nothing and learns the least; fine-tuning
#   everything learns the most and **forgets the source task**; layer-wise rates and gradual unfreezing
#   are close on the target with much less forgetting; L2-SP keeps more than weight decay at the same
#   strength. "Transfer keeps the source performance" holds only for what stays frozen.
# * A good part of forgetting is batch-norm statistics; the rest is in the weights.
# * Sharing one encoder between two tasks keeps both with half the parameters, at the cost of training on both.
# * θ ← θ − η∇L − ηλθ is exactly `SGD(weight_decay=λ)`; with Adam, put the decay outside the adaptive
#   step (AdamW).
#
# **Next:** [05 · Domain adaptation](05_domain_adaptation.ipynb) transfers when the *inputs* shift
# rather than the classes. [08 · ResNet image transfer](08_resnet_image_transfer.ipynb) asks which
# layers of this network transfer, and brings in an ImageNet CNN.
