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
# # 11 · Parameter-efficient fine-tuning: LoRA against full fine-tuning
#
# **Goals.** By the end of this notebook you will
# 1. know the LoRA idea, a frozen weight matrix plus a trainable low-rank update
#    $W x + B A x \cdot \alpha / r$, have written such a layer by hand and checked it against the
#    `peft` library's own layer on the same weights;
# 2. have trained the same pretrained text encoder three ways, for the same number of steps, with each
#    method's learning rate chosen on validation data: full fine-tuning, LoRA, and the classification head
#    alone; and measured for each the trainable parameters, the accuracy over seeds, the seconds, the peak
#    memory and the size of what has to be saved;
# 3. have merged a LoRA adapter into the weights (the logits do not change) and reloaded a saved adapter;
# 4. have chosen LoRA's rank on validation data, and met one other parameter-efficient method, (IA)³.
#
# **Prerequisites.** [07](07_bert_fine_tuning.ipynb) (the fine-tuning pipeline this lesson reuses) and
# [04](04_model_based.ipynb) (freezing parts of a pretrained network).
#
# **Time.** for you ≈ 35 min reading + 45 min exercises; for the machine, smoke ≈ 0.7 min · default ≈ 4.7 min on a 2-core CPU (measured by `bench/lesson_times.py`).

# %%
import inspect
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display
from tqdm.auto import tqdm

# %% tags=["parameters"]
seed: int = 0  # first seed; n seeds use seed, seed + 1, ..., seed + n - 1 (the first also picks learning rates)
device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps"
profile: str = os.environ.get("COURSE_PROFILE", "default")  # "smoke" (CI, ~1 min), "default" (laptop CPU), "full"
metrics_path: str = ""  # "" means data/runs/<profile>/11_parameter_efficient_fine_tuning.metrics.json
model_name: str = "minilm"  # "minilm" (offline 6-layer BERT) or a hub name such as "bert-base-uncased"
n_seeds: int = 0  # seeds per method in the comparison; 0 means the profile's choice (smoke 1, default 3, full 5)
steps: int = 0  # optimizer steps of every training run; 0 means the profile's choice
batch_size: int = 16  # training snippets per optimizer step, the same for every method
max_length: int = 48  # tokens kept per snippet (most snippets are shorter)
lora_rank: int = 8  # r of the LoRA runs compared with full fine-tuning
lora_alpha: float = 16.0  # alpha of LoRA; the update is scaled by alpha / r
lora_dropout: float = 0.1  # dropout on the input of the LoRA branch while training
mixed_precision: str = "auto"  # "auto" (bf16 where the hardware runs it fast, lesson 07), "no" or "bf16"

# %%
from transfer_utils.data import datasets
from transfer_utils.core import plots
from transfer_utils import fine_tuning as tc
from transfer_utils.methods import parameter_efficient as pe
from transfer_utils.models.pretrained import check_text_model, load_text_classifier
from transfer_utils.core.evidence import Claims, compare, constant_baseline, spread, summarize
from transfer_utils.core.runtime import check_choice, check_float, check_int, check_seed, start_lesson
from transfer_utils.training import precision

lesson = start_lesson("11_parameter_efficient_fine_tuning", seed=seed, device=device, profile=profile,
                      metrics_path=metrics_path)
claims = Claims()  # the sentences this run's numbers decide, shown in the summary and saved with the metrics
check_text_model("model_name", model_name)
n_seeds = check_int("n_seeds", n_seeds, low=0, high=20) or lesson.pick(smoke=1, default=3, full=5)
steps = check_int("steps", steps, low=0, high=100_000) or lesson.pick(smoke=8, default=64, full=300)
check_int("batch_size", batch_size, low=2, high=256)
check_int("max_length", max_length, low=16, high=512)
check_int("lora_rank", lora_rank, low=1, high=256)
check_float("lora_alpha", lora_alpha, low=0.01, high=1024.0)
check_float("lora_dropout", lora_dropout, low=0.0, high=0.9)
check_choice("mixed_precision", mixed_precision, precision.PRECISIONS)
run_precision = precision.resolve_precision(mixed_precision, lesson.device)  # "no" or "bf16", the same for every run
check_seed(seed, n_seeds)
seeds = [lesson.seed + i for i in range(n_seeds)]
plots.setup()
sizes = lesson.pick(smoke={"train": 600, "val": 120, "test": 200},
                    default={"train": None, "val": 200, "test": 600},  # None: the whole split
                    full={"train": None, "val": None, "test": None})
# each method's learning-rate grid (a head alone needs a far larger rate than the whole network)
lr_grids = lesson.pick(
    smoke={"full": [1e-4], "lora": [1e-3], "head": [1e-2], "ia3": [1e-2]},
    default={"full": [1e-4, 3e-4], "lora": [2e-3, 5e-3], "head": [1e-2, 5e-2], "ia3": [1e-2, 5e-2]},
    full={"full": [5e-5, 1e-4, 3e-4], "lora": [1e-3, 2e-3, 5e-3], "head": [5e-3, 2e-2, 5e-2],
          "ia3": [5e-3, 2e-2, 5e-2]})
ranks = sorted({lora_rank, *lesson.pick(smoke=[2], default=[32], full=[1, 2, 4, 16, 32, 64])})
print(lesson, sizes, {"steps": steps, "batch_size": batch_size, "seeds": seeds, "ranks": ranks,
                     "precision": run_precision})

# %% [markdown]
# ## 1. Why train fewer parameters?
#
# Full fine-tuning (lesson 07) changes every weight of the encoder. That works, but for each new task you
# keep a whole copy of the model, the optimizer keeps two running averages per weight (AdamW), and every
# weight needs a gradient. With a model of billions of weights, that is the difference between one GPU and
# many, and between megabytes and gigabytes per task.
#
# **LoRA** (low-rank adaptation, Hu et al., 2021) keeps the pretrained weight $W \in \mathbb{R}^{d_{out}
# \times d_{in}}$ frozen and learns a change of it with low rank $r$:
# $$h = W x + \Delta W x, \qquad \Delta W = \frac{\alpha}{r} B A, \quad A \in \mathbb{R}^{r \times d_{in}},
#   \; B \in \mathbb{R}^{d_{out} \times r}.$$
# The adapter has $r (d_{in} + d_{out})$ numbers instead of $d_{in} d_{out}$. $B$ starts at zero, so
# training starts exactly at the pretrained model; $A$ starts random. The factor $\alpha / r$ keeps the
# size of the update comparable when you change $r$, so a learning rate chosen for one rank roughly
# carries over to another. After training, $\Delta W$ can be added into $W$: the adapted model is then a
# plain model again, with no extra cost at prediction time.
#
# ## 2. The task
#
# Rotten Tomatoes critic snippets, *fresh* (1) or *rotten* (0), with the course's fixed
# train / validation / test split. Learning rates and the rank are chosen on the validation split; the
# test split is scored once per trained model that a choice kept.

# %%
snippets = datasets.load_rotten_tomatoes()


def subset(part: datasets.Part, n: int | None) -> datasets.Part:
    """The whole split, or a stratified sample of ``n`` snippets."""
    return part if n is None else datasets.sample_n(part, n, seed=lesson.seed)


train, val, test = (subset(snippets.train, sizes["train"]), subset(snippets.val, sizes["val"]),
                    subset(snippets.test, sizes["test"]))
constant_accuracy = constant_baseline(test.y, "accuracy")  # the best constant answer's test accuracy
constant_val_accuracy = constant_baseline(val.y, "accuracy")
tokenizer, _ = load_text_classifier(model_name, num_labels=2)
train_data = tc.TokenizedTexts(train.x, train.y, tokenizer, max_length)
val_data = tc.TokenizedTexts(val.x, val.y, tokenizer, max_length)
print(snippets.summary())
print(f"used here: train {len(train)} (each run sees {steps * batch_size} of them: {steps} steps of {batch_size}), "
      f"validation {len(val)}, test {len(test)}; the best constant answer scores {constant_accuracy:.3f} on this "
      f"test split and {constant_val_accuracy:.3f} on validation")

# %% [markdown]
# ## 3. A LoRA layer by hand
#
# `LoRALinear` wraps a frozen `nn.Linear` and adds the two small matrices. Its forward pass is the formula
# above, with dropout on the input of the low-rank branch while training (as `peft` does):

# %%
print(inspect.getsource(pe.LoRALinear.forward))
print(inspect.getsource(pe.LoRALinear.delta_weight))

# %% [markdown]
# `peft` does the same with `get_peft_model(model, LoraConfig(...))`: it replaces each target layer (here
# the `query` and `value` projections of every attention block, the choice of the LoRA paper) by its own
# `lora.Linear`. To check our layer against it, we take one such layer from MiniLM, give its $B$ random
# values (at zero the check would pass for any $A$), copy the same $W$, $b$, $A$, $B$ into our class, and
# feed both the real hidden states of a batch of snippets.

# %%
torch.manual_seed(lesson.seed)
_, check_model = load_text_classifier(model_name, num_labels=2)
check_model = pe.lora_classifier(check_model, r=lora_rank, alpha=lora_alpha, dropout=lora_dropout).eval()
peft_query = check_model.base_model.model.bert.encoder.layer[0].attention.self.query
print(type(peft_query).__module__ + "." + type(peft_query).__name__, "around", peft_query.get_base_layer())
batch = tc.padding_collator(tokenizer)([val_data[i] for i in range(16)])
with torch.no_grad():
    hidden = check_model.base_model.model.bert.embeddings(input_ids=batch["input_ids"])  # the query layer's input
    at_start = (peft_query(hidden) - peft_query.get_base_layer()(hidden)).abs().max().item()
    generator = torch.Generator().manual_seed(lesson.seed)
    peft_query.lora_B["default"].weight.copy_(torch.randn(peft_query.lora_B["default"].weight.shape,
                                                          generator=generator) * 0.05)
    hand_query = pe.LoRALinear.from_peft(peft_query).eval()
    hand_max_abs_diff = (hand_query(hidden) - peft_query(hidden)).abs().max().item()
    adapter_effect = (hand_query(hidden) - hand_query.base(hidden)).abs().max().item()
del check_model
print(f"B = 0: the adapter changes the output by at most {at_start:.1e} (training starts at the pretrained model)")
print(f"random B: max |hand − peft| = {hand_max_abs_diff:.1e}, while the adapter moves the output by up to "
      f"{adapter_effect:.3f}")
display(Markdown(claims.claim(
    "hand_lora_matches_peft", hand_max_abs_diff < 1e-5 and adapter_effect > 1e-3,
    f"The hand-written LoRA layer reproduces peft's `lora.Linear` on MiniLM's first query projection: the "
    f"largest difference is {hand_max_abs_diff:.1e}, against an adapter effect of {adapter_effect:.3f}.",
    f"The hand-written LoRA layer does NOT match peft's (max difference {hand_max_abs_diff:.1e}, adapter "
    f"effect {adapter_effect:.3f}).")))

# %% [markdown]
# ## 4. Three ways to train, and what each one trains
#
# * **full fine-tuning**: every weight (lesson 07);
# * **LoRA** on `query` and `value` of each attention block, with the new classification head trained in
#   full (it starts random, so it has to be);
# * **head only**: the encoder frozen, only the classification head trained.
#
# And, for contrast in section 10, **(IA)³**: instead of adding a low-rank matrix, it learns one scaling
# vector per target layer that multiplies the keys, the values and the feed-forward activations element by
# element, so even fewer numbers are trained.

# %%
def build(method: str, run_seed: int, rank: int = lora_rank) -> torch.nn.Module:
    """A fresh pretrained classifier (head initialised by ``run_seed``) prepared for one method."""
    torch.manual_seed(run_seed)
    _, model = load_text_classifier(model_name, num_labels=2)
    if method == "full":
        return model
    if method == "lora":
        return pe.lora_classifier(model, r=rank, alpha=lora_alpha, dropout=lora_dropout)
    if method == "head":
        return pe.train_head_only(model)
    if method == "ia3":
        return pe.ia3_classifier(model)
    raise ValueError(method)


METHODS = {"full": "full fine-tuning", "lora": f"LoRA (r={lora_rank})", "head": "head only", "ia3": "(IA)³"}
counts = {}
for method in METHODS:
    trainable, total, share = pe.trainable_share(build(method, lesson.seed))
    counts[method] = {"trainable parameters": trainable, "all parameters": total, "share trained": share}
counts_table = pd.DataFrame(counts).T.rename(index=METHODS)
lora_share = counts["lora"]["share trained"]
counts_table.assign(**{"trainable parameters": counts_table["trainable parameters"].map("{:,.0f}".format),
                        "all parameters": counts_table["all parameters"].map("{:,.0f}".format),
                        "share trained": counts_table["share trained"].map("{:.3%}".format)})

# %% [markdown]
# ## 5. One training recipe; each method's learning rate chosen on validation
#
# Every run goes through the course's fine-tuning function `tc.fine_tune` (lesson 07): AdamW with weight
# decay on weights only, a warm-up then linear decay, gradient clipping, batches grouped by length. The
# optimizer only receives the parameters that require a gradient, so the same function trains all four
# methods. Every run takes the same number of optimizer steps on the same batch size, in the same precision
# (`mixed_precision="auto"`: bf16 autocast where the hardware has bf16 instructions, as in lesson 07).
#
# A fair comparison gives every method the same tuning budget. A frozen encoder with a fresh head needs a
# much larger learning rate than the whole network (a rate that suits full fine-tuning barely moves a
# head), and LoRA's small matrices need a larger one than full fine-tuning. So each method gets a small grid
# of rates of its own, tried on the first seed and scored on the validation split; the best one is kept.
#
# Memory is measured as the peak growth of the process's resident set size (RSS, sampled every few
# milliseconds by `pe.PeakMemory`) during training, above what was in use just before. Python's
# `tracemalloc` would not see it: PyTorch allocates tensors outside Python's allocator.

# %%
def train_run(method: str, lr: float, run_seed: int, rank: int = lora_rank) -> dict:
    """One training run; returns the model, its validation accuracy, seconds and peak memory."""
    model = build(method, run_seed, rank)
    config = tc.FineTuneConfig(lr=lr, batch_size=batch_size, epochs=1, max_steps=steps, warmup_ratio=0.1,
                               weight_decay=0.01, clip_grad_norm=1.0, max_length=max_length,
                               mixed_precision=run_precision, seed=run_seed)
    with pe.PeakMemory() as memory:
        result = tc.fine_tune(model, tokenizer, train_data, val_data, config, progress=False)
    return {"model": model, "method": method, "lr": lr, "seed": run_seed, "rank": rank,
            "trainable": pe.trainable_share(model)[0],
            "val_accuracy": result.history.best_score, "seconds": result.seconds,
            "peak_mb": memory.peak_bytes / 2**20, "steps": result.history.steps}


def test_accuracy(model: torch.nn.Module) -> float:
    """Accuracy on the test split (called once per model a choice kept)."""
    logits = tc.text_logits(model, tokenizer, test.x, max_length=max_length, mixed_precision=run_precision)
    return float(np.mean(logits.argmax(-1).numpy() == test.y))


grid_runs = []
for method in ("full", "lora", "head"):
    for lr in tqdm(lr_grids[method], desc=f"{METHODS[method]}: learning rates", mininterval=5):
        grid_runs.append(train_run(method, lr, seeds[0]))
grid_table = pd.DataFrame([{k: r[k] for k in ("method", "lr", "val_accuracy", "seconds", "peak_mb")}
                           for r in grid_runs])
chosen = {m: max((r for r in grid_runs if r["method"] == m), key=lambda r: r["val_accuracy"])
          for m in ("full", "lora", "head")}
chosen_lr = {m: r["lr"] for m, r in chosen.items()}
for run in grid_runs:
    if run is not chosen[run["method"]]:
        run["model"] = None  # free the memory of the runs not kept
print(f"validation accuracy of the constant predictor: {constant_val_accuracy:.3f}; chosen learning rates: "
      + ", ".join(f"{METHODS[m]} {lr:g}" for m, lr in chosen_lr.items()))
grid_table.assign(method=grid_table["method"].map(METHODS)).round(3)

# %% [markdown]
# ## 6. The comparison over seeds
#
# With the learning rates fixed, each method trains again with the other seeds (a new head, dropout and
# batch order per seed); the first seed's runs are the ones above. Every kept model is scored on the test
# split once.

# %%
runs = {m: [chosen[m]] for m in chosen}
for run_seed in tqdm(seeds[1:], desc="seeds", mininterval=5):
    for method in runs:
        runs[method].append(train_run(method, chosen_lr[method], run_seed))
for method, method_runs in runs.items():
    for run in method_runs:
        run["test_accuracy"] = test_accuracy(run["model"])
        if run["seed"] != seeds[0]:
            run["model"] = None  # only the first seed's models are used below
accuracy = {m: [r["test_accuracy"] for r in rs] for m, rs in runs.items()}
seconds = {m: float(np.median([r["seconds"] for r in rs])) for m, rs in runs.items()}
peak_mb = {m: float(np.median([r["peak_mb"] for r in rs])) for m, rs in runs.items()}
comparison_table = pd.DataFrame({
    METHODS[m]: {"learning rate": f"{chosen_lr[m]:g}", "test accuracy": summarize(accuracy[m]),
                 "trainable parameters": f"{counts[m]['trainable parameters']:,}",
                 "share trained": f"{counts[m]['share trained']:.3%}", "seconds per run (median)": f"{seconds[m]:.0f}",
                 "peak memory growth, MiB (median)": f"{peak_mb[m]:.0f}"} for m in runs}).T
print(f"{steps} steps of {batch_size} snippets per run; the constant predictor scores {constant_accuracy:.3f} on "
      f"this test split")
comparison_table

# %%
lora_vs_full = compare(accuracy["lora"], accuracy["full"], METHODS["lora"], "full fine-tuning")
lora_vs_head = compare(accuracy["lora"], accuracy["head"], METHODS["lora"], "head only")
lora_mean, full_mean, head_mean = (spread(accuracy[m])[0] for m in ("lora", "full", "head"))
lora_gap_to_full = lora_mean - full_mean
display(Markdown("\n".join("- " + text for text in [
    claims.claim(
        "lora_trains_under_5_percent", lora_share < 0.05,
        f"LoRA (r={lora_rank}, query and value, plus the head) trains {lora_share:.2%} of the parameters.",
        f"LoRA trains {lora_share:.2%} of the parameters, NOT under five per cent."),
    claims.claim(
        "lora_within_2_points_of_full", lora_gap_to_full >= -0.02 and len(seeds) >= 3,
        f"On the seed mean, LoRA is within two points of full fine-tuning: {summarize(accuracy['lora'])} vs "
        f"{summarize(accuracy['full'])} (gap {lora_gap_to_full:+.3f}; constant predictor {constant_accuracy:.3f}).",
        f"LoRA is NOT shown to be within two points of full fine-tuning here: {summarize(accuracy['lora'])} vs "
        f"{summarize(accuracy['full'])} (gap {lora_gap_to_full:+.3f}; constant predictor {constant_accuracy:.3f}"
        f"{'; too few seeds to say' if len(seeds) < 3 else ''})."),
    claims.comparison("lora_vs_full", lora_vs_full),
    claims.comparison("lora_vs_head", lora_vs_head),
    claims.claim(
        "head_only_trained", head_mean > constant_accuracy + 0.03,
        f"The head-only baseline left the constant predictor behind ({head_mean:.3f} vs {constant_accuracy:.3f}), "
        "so it trained and is a fair baseline.",
        f"The head-only baseline stayed near the constant predictor ({head_mean:.3f} vs {constant_accuracy:.3f}): "
        "it did not train in this budget, so it is no evidence for the other methods."),
    claims.claim(
        "lora_uses_less_memory", peak_mb["lora"] < peak_mb["full"],
        f"Peak memory growth while training (median RSS over seeds): LoRA {peak_mb['lora']:.0f} MiB, full "
        f"fine-tuning {peak_mb['full']:.0f} MiB, head only {peak_mb['head']:.0f} MiB.",
        f"LoRA did NOT use less memory than full fine-tuning here (median RSS growth {peak_mb['lora']:.0f} vs "
        f"{peak_mb['full']:.0f} MiB; head only {peak_mb['head']:.0f} MiB)."),
    claims.claim(
        "lora_faster_per_run", seconds["lora"] < seconds["full"],
        f"A LoRA run took {seconds['lora']:.0f} s against {seconds['full']:.0f} s for full fine-tuning and "
        f"{seconds['head']:.0f} s for the head alone (medians, same steps).",
        f"A LoRA run was NOT faster than full fine-tuning: {seconds['lora']:.0f} s vs {seconds['full']:.0f} s "
        f"(head alone {seconds['head']:.0f} s; medians, same steps)."),
])))

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
for method in runs:
    mean, std = spread(accuracy[method])
    ax.errorbar(counts[method]["trainable parameters"], mean, yerr=std, fmt="o", capsize=4, label=METHODS[method])
ax.axhline(constant_accuracy, color="grey", linestyle=":", label="constant predictor")
ax.set_xscale("log")
ax.set(title=f"Test accuracy against trained parameters ({len(seeds)} seed(s), {steps} steps)",
       xlabel="trainable parameters (log scale)", ylabel="test accuracy")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# How much time can LoRA save per step? Less than its parameter count suggests: the backward pass still has
# to carry the gradient through every frozen layer down to the lowest adapter; what LoRA saves is the
# gradient *of* each frozen weight matrix and the optimizer's work and memory for it. The head alone needs
# no backward pass through the encoder at all, so its steps are the cheapest; but its features stay those
# the encoder learned for another purpose, which limits what it can learn.
#
# ## 7. What has to be saved
#
# A fine-tuned model is a full copy of the encoder per task. A LoRA adapter is only $A$, $B$ of each target
# layer and the head; `peft`'s `save_pretrained` writes just those (plus a small JSON config naming the
# base model), and `PeftModel.from_pretrained(base_model, folder)` puts them back on a fresh copy of the
# base. The course writes files atomically: `pe.save_pretrained_atomic` saves into a temporary folder and
# renames it into place, so a crash never leaves half an adapter.

# %%
from peft import PeftModel

lora_model, full_model = runs["lora"][0]["model"].eval(), runs["full"][0]["model"].eval()
check_texts = test.x[:64]
with tempfile.TemporaryDirectory() as folder:
    adapter_files = pe.save_pretrained_atomic(lora_model, f"{folder}/adapter")
    full_files = pe.save_pretrained_atomic(full_model, f"{folder}/full")
    torch.manual_seed(0)  # the reloaded adapter brings its own head: the base's new head is replaced
    _, base = load_text_classifier(model_name, num_labels=2)
    reloaded = PeftModel.from_pretrained(base, f"{folder}/adapter").eval()
    reload_max_abs_logit_diff = float((tc.text_logits(reloaded, tokenizer, check_texts, max_length=max_length)
                                       - tc.text_logits(lora_model, tokenizer, check_texts, max_length=max_length))
                                      .abs().max())
adapter_bytes, full_bytes = sum(adapter_files.values()), sum(full_files.values())
print("adapter folder:", adapter_files)
print("full model folder:", full_files)
print(f"reloaded adapter vs trained model, max |logit difference| on {len(check_texts)} snippets: "
      f"{reload_max_abs_logit_diff:.1e}")
display(Markdown(claims.claim(
    "adapter_is_small", adapter_bytes * 50 < full_bytes and reload_max_abs_logit_diff < 1e-5,
    f"The LoRA adapter takes {adapter_bytes / 1024:.0f} KiB on disk against {full_bytes / 2**20:.1f} MiB for the "
    f"fully fine-tuned model ({full_bytes / adapter_bytes:.0f} times smaller), and reloading it onto a fresh "
    f"base model gives the same logits (max difference {reload_max_abs_logit_diff:.1e}).",
    f"The adapter is NOT under a fiftieth of the full model, or does not reload exactly: {adapter_bytes / 1024:.0f} "
    f"KiB vs {full_bytes / 2**20:.1f} MiB, reload difference {reload_max_abs_logit_diff:.1e}.")))

# %% [markdown]
# ## 8. Merging the adapter into the weights
#
# Because $W x + \frac{\alpha}{r} B A x = (W + \frac{\alpha}{r} B A)\, x$, the adapter can be folded into
# $W$ once training is over. `merge_and_unload` does that for every target layer and returns a plain
# `BertForSequenceClassification`: no `peft` needed to serve it, and no extra matrix products per token.
# (Keep the unmerged adapter if you want to swap tasks on one base model.) Merging changes the order of
# floating-point operations, so the logits agree to rounding, not bit for bit.

# %%
before = tc.text_logits(lora_model, tokenizer, check_texts, max_length=max_length)
hand_merged_query = pe.LoRALinear.from_peft(
    lora_model.base_model.model.bert.encoder.layer[0].attention.self.query).merged().weight.detach().clone()
merged_model = lora_model.merge_and_unload()  # lora_model's layers are replaced in place: use merged_model now
after = tc.text_logits(merged_model, tokenizer, check_texts, max_length=max_length)
merge_max_abs_logit_diff = float((before - after).abs().max())
merge_vs_hand = float((merged_model.bert.encoder.layer[0].attention.self.query.weight - hand_merged_query)
                      .abs().max())
print(type(merged_model).__name__, "| LoRA tensors left:",
      sum("lora" in n for n, _ in merged_model.named_parameters()))
print(f"max |logit before − after merging| on {len(check_texts)} snippets: {merge_max_abs_logit_diff:.1e}; "
      f"peft's merged query weight vs W + BA·α/r by hand: {merge_vs_hand:.1e}")
display(Markdown(claims.claim(
    "merge_keeps_logits", merge_max_abs_logit_diff < 1e-4 and merge_vs_hand < 1e-6,
    f"Merging the adapter into the weights left the logits unchanged to {merge_max_abs_logit_diff:.1e}, and "
    f"peft's merged weight equals W + BA·α/r computed by hand (difference {merge_vs_hand:.1e}).",
    f"Merging changed the logits by {merge_max_abs_logit_diff:.1e} (or the merged weight differs from the hand "
    f"formula by {merge_vs_hand:.1e}): more than rounding.")))

# %% [markdown]
# ## 9. Choosing the rank on validation
#
# A larger $r$ lets the update express more, at more parameters. The rank is a hyper-parameter like the
# learning rate, so it is chosen on validation data: each rank below trains with LoRA's chosen learning rate
# on the first seed (the $\alpha / r$ scaling keeps that rate sensible across ranks), and the rank with the
# best validation accuracy is the pick, scored once on the test split. One seed per rank: differences of a
# point or two between ranks are within seed-to-seed noise.

# %%
rank_runs = {lora_rank: runs["lora"][0]}
for rank in tqdm([r for r in ranks if r != lora_rank], desc="ranks", mininterval=5):
    rank_runs[rank] = train_run("lora", chosen_lr["lora"], seeds[0], rank=rank)
rank_table = pd.DataFrame({r: {"trainable parameters": run["trainable"],
                               "validation accuracy": run["val_accuracy"], "seconds": run["seconds"]}
                           for r, run in sorted(rank_runs.items())}).T
rank_table.index.name = "rank r"
best_rank = max(rank_runs, key=lambda r: (rank_runs[r]["val_accuracy"], -r))  # ties: the smaller rank
best_rank_test_accuracy = (rank_runs[best_rank]["test_accuracy"] if "test_accuracy" in rank_runs[best_rank]
                           else test_accuracy(rank_runs[best_rank]["model"]))
rank_span = float(rank_table["validation accuracy"].max() - rank_table["validation accuracy"].min())
picked = (f"Rank {best_rank} scored best on validation ({rank_runs[best_rank]['val_accuracy']:.3f}, one seed) and "
          f"scores {best_rank_test_accuracy:.3f} on the test split (constant predictor {constant_accuracy:.3f}).")
display(Markdown(claims.claim(
    "rank_matters_little", rank_span <= 0.02,
    f"{picked} All ranks tried ({', '.join(str(r) for r in sorted(rank_runs))}) lie within {rank_span:.3f} of each "
    "other on validation: at this budget the rank barely matters, and one seed cannot rank them.",
    f"{picked} Validation accuracy spans {rank_span:.3f} across ranks {', '.join(str(r) for r in sorted(rank_runs))}"
    " (one seed per rank: a hint, not a ranking).")))
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot(rank_table.index, rank_table["validation accuracy"], marker="o")
ax.axhline(constant_val_accuracy, color="grey", linestyle=":", label="constant predictor")
ax.set_xscale("log", base=2)
ax.set(title="LoRA rank sweep (first seed)", xlabel="rank r (log scale)", ylabel="validation accuracy")
ax.legend(fontsize=8)
plt.show()
rank_table.round(3)

# %% [markdown]
# ## 10. Another method for contrast: (IA)³
#
# (IA)³ (Liu et al., 2022) learns a vector $l$ per target layer and multiplies element by element:
# keys become $l_k \odot k$, values $l_v \odot v$, and the feed-forward activations $l_{ff} \odot h$. The
# vectors start at one (no change). That is one number per channel instead of a low-rank matrix, so it
# trains even fewer parameters than LoRA. Same steps, same recipe, its own learning-rate grid on the first
# seed.

# %%
ia3_runs = [train_run("ia3", lr, seeds[0]) for lr in tqdm(lr_grids["ia3"], desc="(IA)³: learning rates")]
ia3_best = max(ia3_runs, key=lambda r: r["val_accuracy"])
ia3_test_accuracy = test_accuracy(ia3_best["model"])
lora_seed0 = runs["lora"][0]["test_accuracy"]
ia3_share = counts["ia3"]["share trained"]
print(f"(IA)³: learning rate {ia3_best['lr']:g} (validation {ia3_best['val_accuracy']:.3f}), test accuracy "
      f"{ia3_test_accuracy:.3f}, {counts['ia3']['trainable parameters']:,} trainable parameters ({ia3_share:.3%}); "
      f"LoRA on the same seed {lora_seed0:.3f}; constant predictor {constant_accuracy:.3f}")
display(Markdown(claims.claim(
    "ia3_contrast", ia3_test_accuracy > constant_accuracy + 0.03,
    f"(IA)³ trained {ia3_share:.3%} of the parameters and scored {ia3_test_accuracy:.3f} on the test split, "
    f"against {lora_seed0:.3f} for LoRA on the same seed (one seed each: a contrast, not a ranking).",
    f"(IA)³ did not get clearly above the constant predictor in this budget ({ia3_test_accuracy:.3f} vs "
    f"{constant_accuracy:.3f}, with {ia3_share:.3%} of the parameters trained; LoRA on the same seed "
    f"{lora_seed0:.3f}).")))

# %% [markdown]
# ## 11. Exercises
#
# Each exercise's function is checked right below it against the course's reference answer; the student
# version of the notebook leaves the functions empty, and a check then says "not attempted".
#
# **Exercise 1 (warm-up).** How many numbers does a LoRA adapter of rank `r` add to one linear layer with
# `d_in` inputs and `d_out` outputs (bias not adapted)? This count is why LoRA can adapt a large pretrained
# model on small hardware: compare it with the `d_in · d_out` weights that full fine-tuning would train.

# %%
# NBVAL_CHECK_OUTPUT
from transfer_utils.core.exercises import check_function, check_prediction
from transfer_utils.solutions import lesson11 as solutions


def lora_parameter_count(d_in: int, d_out: int, r: int) -> int:
    ### BEGIN SOLUTION
    return r * (d_in + d_out)
    ### END SOLUTION


check_function(lora_parameter_count, solutions.lora_parameter_count,
               [(384, 384, 8), (384, 1536, 4), (10, 3, 1), (1, 1, 1), (768, 768, 64)],
               name="exercise 1 (LoRA parameter count)")

# %% [markdown]
# **Exercise 2 (apply).** Write the forward pass of a LoRA linear layer without dropout: input `x` of shape
# `[n, d_in]`, frozen `weight` `[d_out, d_in]` and `bias` `[d_out]`, adapter `A` `[r, d_in]` and `B`
# `[d_out, r]`, and `alpha`. Your function is checked against `peft`'s own layer holding the same numbers:
# the shapes and the scaling are where hand-written adapters usually go wrong.

# %%
# NBVAL_CHECK_OUTPUT
def my_lora_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, A: torch.Tensor,
                    B: torch.Tensor, alpha: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    r = A.shape[0]
    return x @ weight.T + bias + (x @ A.T @ B.T) * alpha / r
    ### END SOLUTION


generator = torch.Generator().manual_seed(0)


def lora_case(n: int, d_in: int, d_out: int, r: int, alpha: float, zero_B: bool = False) -> tuple:
    """Random x, W, b, A, B of these sizes, and alpha."""
    x, weight, bias, A, B = (torch.randn(*shape, generator=generator)
                             for shape in ((n, d_in), (d_out, d_in), (d_out,), (r, d_in), (d_out, r)))
    return x, weight, bias, A, torch.zeros_like(B) if zero_B else B, alpha


forward_cases = [lora_case(5, 6, 4, 2, 8.0), lora_case(3, 3, 3, 1, 1.0),
                 lora_case(1, 4, 2, 1, 16.0),  # a single input row
                 lora_case(4, 6, 4, 2, 8.0, zero_B=True)]  # B = 0, as at the start of training: W x + b
check_function(my_lora_forward, solutions.lora_forward, forward_cases, name="exercise 2 (LoRA forward)", atol=1e-5)

# %% [markdown]
# **Exercise 3 (apply).** Merge: return the weight of a plain linear layer that computes the same function
# as the LoRA layer of exercise 2 (section 8). A merged adapter serves predictions at the pretrained model's
# speed, with no `peft` installed.

# %%
# NBVAL_CHECK_OUTPUT
def my_merge(weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    return weight + B @ A * alpha / A.shape[0]
    ### END SOLUTION


check_function(my_merge, solutions.merge, [(c[1], c[3], c[4], c[5]) for c in forward_cases],
               name="exercise 3 (merging)", atol=1e-5)

# %% [markdown]
# **Exercise 4 (apply).** A task's adapter is stored beside one shared base model, so its size is what each
# new task costs on disk. How many bytes do `n_numbers` numbers of a given `dtype` (`"float32"`,
# `"bfloat16"`, `"float16"` or `"float64"`) take in a safetensors file, its small header aside? The check
# writes real files; one case is the LoRA model of section 4, whose adapter file section 7 wrote in float32.

# %%
# NBVAL_CHECK_OUTPUT
def my_stored_bytes(n_numbers: int, dtype: str) -> int:
    ### BEGIN SOLUTION
    return n_numbers * {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}[dtype]
    ### END SOLUTION


n_lora = counts["lora"]["trainable parameters"]
check_function(my_stored_bytes, solutions.stored_bytes,
               [(n_lora, "float32"), (n_lora, "bfloat16"), (1, "float16"), (0, "float32"), (1000, "float64")],
               name="exercise 4 (adapter size on disk)")

# %% [markdown]
# **Exercise 5 (experiment).** Section 9 tried other ranks. Double the rank of the LoRA model of section 4,
# from `lora_rank` to twice that, on the same layers: will the number of trainable parameters grow "exactly
# twice", "less than twice" or "more than twice"? Put your prediction in `my_prediction`, then run the cell
# below, which builds the model with the doubled rank and counts. Think of everything the LoRA model trains,
# not just the adapters.

# %%
def my_prediction() -> str:
    ### BEGIN SOLUTION
    return "less than twice"
    ### END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
before = counts["lora"]["trainable parameters"]
after = pe.trainable_share(build("lora", lesson.seed, rank=2 * lora_rank))[0]
outcome = "exactly twice" if after == 2 * before else "less than twice" if after < 2 * before else "more than twice"
check_prediction(my_prediction, outcome, name="exercise 5 (doubling the rank)",
                 choices=["exactly twice", "less than twice", "more than twice"],
                 evidence=f"rank {lora_rank}: {before:,} trainable parameters → rank {2 * lora_rank}: {after:,} "
                          f"({after / before:.4f} times as many); the new head alone has "
                          f"{counts['head']['trainable parameters']:,}, whatever the rank")

# %% [markdown]
# ## 12. Results

# %%
lesson.save_metrics({
    "seeds": len(seeds),
    "steps": steps,
    "batch_size": batch_size,
    "lora_rank": lora_rank,
    "trained_in_bf16": int(run_precision == "bf16"),  # 1: bf16 autocast, 0: float32
    "constant_accuracy": constant_accuracy,
    "full_accuracy": full_mean,
    "lora_accuracy": lora_mean,
    "head_accuracy": head_mean,
    "full_accuracy_std": spread(accuracy["full"])[1],
    "lora_accuracy_std": spread(accuracy["lora"])[1],
    "head_accuracy_std": spread(accuracy["head"])[1],
    "full_accuracies": accuracy["full"],
    "lora_accuracies": accuracy["lora"],
    "head_accuracies": accuracy["head"],
    "lora_gap_to_full": lora_gap_to_full,
    "full_lr": chosen_lr["full"],
    "lora_lr": chosen_lr["lora"],
    "head_lr": chosen_lr["head"],
    "ia3_lr": ia3_best["lr"],
    "full_trainable": counts["full"]["trainable parameters"],
    "lora_trainable": counts["lora"]["trainable parameters"],
    "head_trainable": counts["head"]["trainable parameters"],
    "ia3_trainable": counts["ia3"]["trainable parameters"],
    "lora_share": lora_share,
    "ia3_share": ia3_share,
    "full_seconds": seconds["full"],
    "lora_seconds": seconds["lora"],
    "head_seconds": seconds["head"],
    "full_peak_mb": peak_mb["full"],
    "lora_peak_mb": peak_mb["lora"],
    "head_peak_mb": peak_mb["head"],
    "adapter_bytes": adapter_bytes,
    "full_model_bytes": full_bytes,
    "adapter_kb": adapter_bytes / 1024,
    "hand_lora_max_abs_diff": hand_max_abs_diff,
    "merge_max_abs_logit_diff": merge_max_abs_logit_diff,
    "merge_vs_hand_max_abs_diff": merge_vs_hand,
    "reload_max_abs_logit_diff": reload_max_abs_logit_diff,
    "ranks": sorted(rank_runs),
    "rank_val_accuracy": [rank_runs[r]["val_accuracy"] for r in sorted(rank_runs)],
    "best_rank": best_rank,
    "best_rank_test_accuracy": best_rank_test_accuracy,
    "ia3_accuracy": ia3_test_accuracy,
    "lora_seed0_accuracy": lora_seed0,
    **claims.as_metrics(),
})
# every profile: the mechanics, which do not depend on how long we train
assert lora_share < 0.05, f"LoRA trains {lora_share:.2%} of the parameters"
assert hand_max_abs_diff < 1e-5 and adapter_effect > 1e-3, "the hand LoRA layer must match peft's"
assert merge_max_abs_logit_diff < 1e-4 and merge_vs_hand < 1e-6, "merging must not change the function"
assert reload_max_abs_logit_diff < 1e-5 and adapter_bytes * 50 < full_bytes
# every profile: full fine-tuning keeps gradients and AdamW state for every weight, the head alone does not
assert peak_mb["full"] > peak_mb["head"] + 100, f"peak memory: full {peak_mb['full']:.0f} MiB, head {peak_mb['head']:.0f}"
if lesson.profile != "smoke":  # the smoke profile's few steps leave every method near the constant predictor
    assert len(seeds) >= 3
    assert lora_gap_to_full >= -0.02, f"LoRA {lora_mean:.3f} is more than two points below full {full_mean:.3f}"
    assert min(full_mean, lora_mean) > constant_accuracy + 0.1, "both encoder-training methods must beat the constant"
    assert head_mean > constant_accuracy + 0.03, "the head-only baseline must train (fair baseline)"
    assert lora_vs_head.winner == METHODS["lora"], "LoRA should clearly beat training the head alone"

# %% [markdown]
# ## Summary and what next
#
# * LoRA freezes a pretrained weight $W$ and trains a low-rank change $\frac{\alpha}{r} B A$ of it; $B$ starts
#   at zero, so training starts at the pretrained model. The hand-written layer matched `peft`'s.
# * With each method's learning rate chosen on validation and the same number of steps, the comparison
#   above shows how close LoRA comes to full fine-tuning while training a small share of the weights, and
#   where the head alone lands.
# * LoRA saves memory (no gradients and optimizer state for frozen weights) and disk (a small adapter per
#   task); its time per step still includes a backward pass through the frozen layers.
# * `merge_and_unload` folds the adapter into the weights: a plain model with the same logits.
# * The rank and the learning rate are hyper-parameters: choose them on validation data.

# %%
display(Markdown(claims.markdown("What this run showed")))

# %% [markdown]
# **Next:** [12 · Scaling out](12_scaling_out.ipynb) trains the same kind of model in several processes
# with Hugging Face `accelerate`.
