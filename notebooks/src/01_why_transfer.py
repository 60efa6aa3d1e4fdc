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
# # 01 · Why transfer?
#
# **Goals.** By the end of this notebook you will
# 1. have measured, on real data, how test accuracy grows with the number of labelled examples for four
#    ways of building a classifier: a small network trained from scratch, a classic bag-of-words model,
#    a frozen pretrained encoder with a linear head, and a fully fine-tuned pretrained encoder;
# 2. know where transfer pays (few labels) and where a classic baseline catches up;
# 3. know the four kinds of transfer (instance-, feature-, parameter- and relation-based) and which lesson
#    teaches each;
# 4. read the objective $L(\theta) = L_{source}(\theta) + \lambda\,L_{target}(\theta)$, see what $\lambda$
#    does on a real source and target, and pick $\lambda$ on validation data, not on the test set.
#
# **Prerequisites.** [00 · Set-up and tour](00_setup_and_tour.ipynb); what a training set, a test set
# and logistic regression are.
#
# **Time.** for you ≈ 35 min reading + 40 min exercises; for the machine, smoke ≈ 0.7 min · default ≈ 4.4 min on a 2-core CPU (measured by `bench/lesson_times.py`).

# %%
import math
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

# %% tags=["parameters"]
seed: int = 0  # first seed; seeds seed, seed+1, ... draw the labelled sets and start the models
device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps"
profile: str = os.environ.get("COURSE_PROFILE", "default")  # "smoke" (CI, ~1 min), "default" (laptop CPU), "full"
metrics_path: str = ""  # "" means data/runs/<profile>/01_why_transfer.metrics.json
model_name: str = "minilm"  # the pretrained encoder: "minilm" (offline) or a hub name such as "bert-base-uncased"
label_sizes: list = [16, 64, 256, 1024]  # labelled training snippets at each point of the curve (smoke: those up to 256)
n_seeds: int = 3  # labelled sets drawn per size (smoke: at most 2)
lr: float = 1e-4  # AdamW learning rate for the two networks that are trained end to end
mixed_precision: str = "auto"  # fine-tuning in bf16 where the hardware has it (lesson 07), "no" or "bf16"

# %%
from transfer_utils.data import datasets
from transfer_utils.core import evidence
from transfer_utils.core import plots
from transfer_utils.models import embeddings
from transfer_utils import learning_curves as lc
from transfer_utils import fine_tuning as tc
from transfer_utils.models.pretrained import load_text_classifier, load_tokenizer
from transfer_utils.models.pretrained import check_text_model
from transfer_utils.core.runtime import (ParameterError, check_choice, check_float, check_int, check_int_list,
                                         check_seed, start_lesson)
from transfer_utils.training import precision

lesson = start_lesson("01_why_transfer", seed=seed, device=device, profile=profile, metrics_path=metrics_path)
# at most the 8,965 snippets of the training split; a repeated size would only repeat a point
sizes = sorted(check_int_list("label_sizes", label_sizes, low=2, high=8965, unique=True))
if not {64, 256} <= set(sizes):
    raise ParameterError(f"parameter 'label_sizes' = {label_sizes!r} must include 64 and 256 "
                         "(the lesson reports gains there)")
check_int("n_seeds", n_seeds, low=1, high=20)
check_float("lr", lr, low=1e-7, high=1e-2)
check_choice("mixed_precision", mixed_precision, precision.PRECISIONS)
check_text_model("model_name", model_name)
plots.setup()
# smoke keeps CI short: fewer sizes, seeds and test snippets, and fine-tuning only up to 64 labels.
# Fine-tuning a 22M-weight network is what costs time on a CPU (about 0.5 s per step of 16 snippets on two
# AVX2 cores), so it runs at two sizes of the curve; every method runs on at least 3 draws in the default profile.
settings = lesson.pick(
    smoke={"max_size": 256, "finetune_sizes": (16, 64), "max_seeds": 2, "test": 200, "source": 200,
           "epochs": 2, "min_steps": 8, "max_steps": 16, "finetune_seeds": 2},
    default={"max_size": 8965, "finetune_sizes": (64, 256), "max_seeds": n_seeds, "test": 400, "source": 300,
             "epochs": 4, "min_steps": 32, "max_steps": 128, "finetune_seeds": 3})
sizes = [n for n in sizes if n <= settings["max_size"]]
seeds = [lesson.seed + i for i in range(min(n_seeds, settings["max_seeds"]))]
check_seed(seed, len(seeds))
claims = evidence.Claims()  # the sentences this run states about its results, rendered from its numbers
print(lesson, {"sizes": sizes, "seeds": seeds, **settings})

# %% [markdown]
# ## 1. The question
#
# Labels are the expensive part of machine learning: someone has to read every snippet and decide. So
# the useful question is not "which model is best?" but "which model is best *for the number of labels
# I can afford*?". A **learning curve** answers it: test accuracy against the number of labelled training
# examples.
#
# The task is the one from lesson 00: is a film critic's snippet *fresh* or *rotten*? Every method below
# trains on the same labelled snippets (drawn at random, stratified by class, once per seed) and is scored
# on the same held-out test snippets.

# %%
snippets = datasets.load_rotten_tomatoes()
test = datasets.sample_n(snippets.test, settings["test"], seed=0)  # fixed across seeds and methods
majority = evidence.constant_baseline(test.y, "accuracy")  # the constant predictor: always the larger class
assert snippets.classes[np.bincount(test.y).argmax()] == "fresh", "the larger test class is the one the plots name"
subsets = lc.labelled_subsets(snippets.train, sizes, seeds)
print(snippets.summary())
print(f"test snippets scored: {len(test)}; always answering 'fresh' scores {majority:.3f} on them")

# %% [markdown]
# ## 2. Four ways to learn from n labels
#
# | method | what it starts from | what is trained on the n labels | transfer? |
# |---|---|---|---|
# | **from scratch** | random weights: a bag of word-piece embeddings (64 numbers per word piece, averaged) and a linear layer, fastText-style | everything | none |
# | **TF-IDF + logistic regression** | nothing: word and word-pair counts, weighted by rarity | a linear model | none (a classic baseline) |
# | **frozen encoder + logistic regression** | pretrained MiniLM, kept fixed; each snippet becomes the mean of its token vectors | a linear model on 384 numbers | feature-based |
# | **fine-tuning** | pretrained MiniLM plus a new classification head | everything | parameter-based |
#
# Fine-tuning uses the recipe of lesson 07 (AdamW, warm-up then linear decay, clipping, bf16 where the
# hardware has it). Four passes over
# a tiny set are too few steps, and four passes over a large set take too long for a laptop CPU, so the
# number of steps is four epochs clipped to a range (printed below). It is also the one method that costs
# minutes per point, so it runs at two sizes of the curve (64 and 256 labels in the default profile; the
# parameter `label_sizes` and the profile decide the others). Lesson 07 shows what a longer run on all
# labels reaches.
#
# **A from-scratch baseline has to be able to learn.** The same 22M-weight transformer with random
# weights, trained like the fine-tuned one, never leaves the majority class with a few hundred labels and
# steps: that is a failure to train, and beating it would prove nothing. The from-scratch network here is
# one that a few hundred examples *can* train (about two million weights, nearly all in the embedding
# table), and it gets the same tuning budget as the linear models: its learning rate is picked on
# validation snippets, never on the test snippets. The word pieces come from MiniLM's tokenizer (a fixed
# vocabulary, no learnt weights).

# %%
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

BATCH = 16
steps_per_size = {n: lc.training_steps(n, BATCH, epochs=settings["epochs"], min_steps=settings["min_steps"],
                                       max_steps=settings["max_steps"])
                  for n in sizes if n in settings["finetune_sizes"]}
print("optimizer steps of", BATCH, "snippets for each size:", steps_per_size)


def tfidf(labelled: datasets.Part, seed: int) -> float:
    """Bag of words: TF-IDF of words and word pairs, then logistic regression."""
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(C=10, max_iter=1000))
    return model.fit(labelled.x, labelled.y).score(test.x, test.y)


# Frozen features: encode every snippet any method will see, once (cached on disk for reruns).
all_texts = sorted({t for part in subsets.values() for t in part.x} | set(test.x))
features = dict(zip(all_texts, embeddings.encode_texts(all_texts, model_name, device=lesson.device)))
test_features = np.stack([features[t] for t in test.x])


def frozen(labelled: datasets.Part, seed: int) -> float:
    """Feature-based transfer: frozen encoder's mean-pooled vectors, then logistic regression."""
    x = np.stack([features[t] for t in labelled.x])
    return LogisticRegression(C=1.0, max_iter=2000).fit(x, labelled.y).score(test_features, test.y)


tokenizer = load_tokenizer(model_name)  # one tokenizer serves every network run
val = datasets.sample_n(snippets.val, settings["test"], seed=0)  # every choice below is made on these, never on test
SCRATCH_LRS = (3e-3, 3e-2)  # Adam learning rates tried for the from-scratch network (picked on validation)


def word_pieces(texts) -> list[list[int]]:
    """Each text as MiniLM word-piece ids, without the special tokens."""
    return tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=128)["input_ids"]


val_pieces, test_pieces = word_pieces(val.x), word_pieces(test.x)


def train_network(model: torch.nn.Module, labelled: datasets.Part, seed: int) -> float:
    """Train every weight with the lesson-07 recipe, then score the test snippets."""
    steps = steps_per_size[len(labelled)]
    epochs = math.ceil(steps / math.ceil(len(labelled) / BATCH))  # enough passes to take `steps` steps
    config = tc.FineTuneConfig(lr=lr, batch_size=BATCH, epochs=epochs, max_steps=steps, warmup_ratio=0.1,
                               weight_decay=0.01, mixed_precision=mixed_precision, seed=seed)
    data = tc.TokenizedTexts(labelled.x, labelled.y, tokenizer)
    run = tc.fine_tune(model.to(lesson.device), tokenizer, data, None, config, progress=False)
    predictions = tc.text_logits(model, tokenizer, test.x, mixed_precision=run.precision).argmax(dim=-1).numpy()
    return float(np.mean(predictions == test.y))


def fine_tuned(labelled: datasets.Part, seed: int) -> float:
    """Parameter-based transfer: start from the pretrained encoder (new random head)."""
    torch.manual_seed(seed)
    _, model = load_text_classifier(model_name, num_labels=2)
    return train_network(model, labelled, seed)


def from_scratch(labelled: datasets.Part, seed: int) -> float:
    """No transfer: a bag of word-piece embeddings from random weights, its learning rate picked on validation."""
    pieces = word_pieces(labelled.x)
    epochs = int(np.clip(8192 // len(labelled), 5, 30))  # small sets get more passes
    models = [lc.train_bag_of_embeddings(pieces, labelled.y, tokenizer.vocab_size, lr=rate, epochs=epochs, seed=seed)
              for rate in SCRATCH_LRS]
    best = max(models, key=lambda m: np.mean(lc.bag_predict(m, val_pieces) == val.y))  # first on a tie
    return float(np.mean(lc.bag_predict(best, test_pieces) == test.y))


methods = {"from scratch (bag of embeddings)": from_scratch, "TF-IDF + logistic regression": tfidf,
           "frozen encoder + logistic regression": frozen, "fine-tuning": fine_tuned}
TRANSFER = ["frozen encoder + logistic regression", "fine-tuning"]
NO_TRANSFER = ["from scratch (bag of embeddings)", "TF-IDF + logistic regression"]

# %% [markdown]
# ## 3. The learning curves

# %%
cheap = {k: v for k, v in methods.items() if k != "fine-tuning"}
curve = lc.learning_curve(cheap, subsets)
draws = {(n, s): part for (n, s), part in subsets.items()
         if n in steps_per_size and s in seeds[:settings["finetune_seeds"]]}
curve += lc.learning_curve({"fine-tuning": methods["fine-tuning"]}, draws)
table = pd.DataFrame(curve).groupby(["method", "n"])["accuracy"].agg(["mean", "std"]).unstack("n")
print(f"constant predictor (always 'fresh') on the same test snippets: {majority:.3f}")
table.round(3)

# %%
all_labels = tfidf(snippets.train, seed)  # the classic baseline with every training label
fig, ax = plt.subplots(figsize=(7, 4))
plots.plot_curves(curve, "n", "accuracy", "method", logx=True, ax=ax,
                  title=f"Learning curves: mean ± std over up to {len(seeds)} labelled sets",
                  xlabel="labelled training snippets (log scale)", ylabel="test accuracy")
ax.axhline(majority, color="grey", linestyle="--", linewidth=1, label=f"always 'fresh' ({majority:.3f})")
ax.axhline(all_labels, color="black", linestyle=":", linewidth=1,
           label=f"TF-IDF with all {len(snippets.train):,} labels ({all_labels:.3f})")
ax.legend(fontsize="small", loc="upper left")
plt.show()

# %%
gains = {n: lc.gain_at(curve, n, TRANSFER, NO_TRANSFER) for n in sizes}
for n in sizes:
    means = lc.means_at(curve, n)
    best = max(means, key=means.get)
    print(f"n={n:>5}: best is {best} ({means[best]:.3f}); best transfer − best no-transfer = {gains[n]:+.3f}")
gain_at_64, gain_at_256 = gains[64], gains[256]
for n in steps_per_size:
    difference = (lc.mean_accuracy(curve, n, "fine-tuning")
                  - lc.mean_accuracy(curve, n, "frozen encoder + logistic regression"))
    print(f"n={n:>5}: fine-tuning − frozen encoder = {difference:+.3f} ({steps_per_size[n]} steps)")

SCRATCH, TFIDF, FROZEN, FINETUNE = methods  # the four names, in the table's order above


def by_seed(method: str, n: int) -> dict[int, float]:
    """Test accuracy of ``method`` at ``n`` labels for each seed it was trained on."""
    return {r["seed"]: r["accuracy"] for r in curve if r["method"] == method and r["n"] == n}


def paired(method_a: str, method_b: str, n: int) -> evidence.Comparison:
    """``method_a`` against ``method_b`` at ``n`` labels, on the seeds both were trained on."""
    a, b = by_seed(method_a, n), by_seed(method_b, n)
    common = [s for s in seeds if s in a and s in b]
    return evidence.compare([a[s] for s in common], [b[s] for s in common], method_a, method_b)


def stated(name: str, prefix: str, result: evidence.Comparison) -> str:
    """Record a comparison's own sentence (it says which way the numbers go, or that they cannot say) with
    its context; it "holds" when the first method is clearly better."""
    text = prefix + result.sentence()
    return claims.claim(name, result.winner == result.name_a, text, text)


seen = []
# 1. the from-scratch network: is it a baseline, i.e. does it leave the constant predictor with enough labels?
scratch_largest = [by_seed(SCRATCH, sizes[-1])[s] for s in seeds]
scratch_text = ", ".join(f"{lc.mean_accuracy(curve, n, SCRATCH):.3f} with {n}" for n in sizes)
seen.append(claims.claim(
    "scratch_network_trains", evidence.compare(scratch_largest, [majority] * len(seeds)).winner == "A",
    f"The from-scratch network scored {scratch_text} labels (means over {len(seeds)} draws), against {majority:.3f} "
    f"for always answering 'fresh': with {sizes[-1]} labels it is clearly above the constant predictor, so it is a "
    "baseline that learns.",
    f"The from-scratch network scored {scratch_text} labels (means over {len(seeds)} draws), against {majority:.3f} "
    f"for always answering 'fresh': it is not clearly above the constant predictor even with {sizes[-1]} labels "
    "(or too few draws to say), so it is not yet a baseline; TF-IDF is the no-transfer competitor that counts."))
# 2. frozen features against the classic baseline, paired by draw, at every size
frozen_vs_tfidf = {n: paired(FROZEN, TFIDF, n) for n in sizes}
seen += [stated(f"frozen_vs_tfidf_at_{n}", f"With {n} labels: ", frozen_vs_tfidf[n]) for n in sizes]
# 3. does the classic baseline climb with labels, and where does it end with all of them?
tfidf_climb = evidence.compare([by_seed(TFIDF, sizes[-1])[s] for s in seeds],
                               [by_seed(TFIDF, sizes[0])[s] for s in seeds],
                               f"TF-IDF with {sizes[-1]} labels", f"TF-IDF with {sizes[0]} labels")
seen.append(claims.comparison("tfidf_climbs", tfidf_climb))
best_method, best_n = max(((m, n) for n in sizes for m in lc.means_at(curve, n)),
                          key=lambda key: lc.mean_accuracy(curve, key[1], key[0]))
best_mean = lc.mean_accuracy(curve, best_n, best_method)
seen.append(claims.claim(
    "tfidf_all_labels_above_curve", all_labels > best_mean,
    f"TF-IDF with all {len(snippets.train):,} labels (one deterministic fit) scores {all_labels:.3f} (always 'fresh': "
    f"{majority:.3f}), above every mean on the curves; the best is {best_method} with {best_n} labels, "
    f"{best_mean:.3f}.",
    f"TF-IDF with all {len(snippets.train):,} labels (one deterministic fit) scores {all_labels:.3f} (always 'fresh': "
    f"{majority:.3f}), not above the best mean on the curves: {best_method} with {best_n} labels, {best_mean:.3f}."))
# 4. fine-tuning: near the constant predictor with the fewest labels? against the frozen encoder?
small, large = min(steps_per_size), max(steps_per_size)
finetune_small = lc.mean_accuracy(curve, small, FINETUNE)
seen.append(claims.claim(
    "finetune_small_near_constant", finetune_small - majority < 0.02,
    f"Fine-tuning with {small} labels ({steps_per_size[small]} steps) scores {finetune_small:.3f}, within two points "
    f"of always answering 'fresh' ({majority:.3f}).",
    f"Fine-tuning with {small} labels ({steps_per_size[small]} steps) scores {finetune_small:.3f}, more than two "
    f"points above always answering 'fresh' ({majority:.3f})."))
seen += [stated(f"finetune_vs_frozen_at_{n}", f"With {n} labels ({steps_per_size[n]} steps): ",
                paired(FINETUNE, FROZEN, n))
         for n in dict.fromkeys([small, large])]
display(Markdown("**What this run shows** (test accuracy, mean ± std over the draws each method was "
                 "trained on):\n\n" + "\n".join(f"- {text}" for text in seen)))

# %% [markdown]
# How to read the curves (what each method can and cannot do; the list above says what this run measured):
#
# * **From scratch.** A network that starts from random weights must learn what every word piece means
#   from our labels alone; with a few dozen snippets most word pieces are seen once or never. That is the
#   point of *pre*-training: the encoder learnt English from a huge corpus before it saw one of our labels.
# * **The classic baseline is the honest competitor.** TF-IDF + logistic regression needs no pretraining;
#   it improves as it sees more words, and sentiment in critics' snippets is carried by a fairly small set
#   of words. With few labels it has not seen enough of them.
# * **Frozen features.** The encoder already places *masterpiece* and *a joy* near each other, so a
#   linear model on its vectors can learn from few examples; it is also the cheapest transfer (one forward
#   pass per snippet).
# * **Fine-tuning** has 22M weights to move and adapts every layer to the task, so it needs more labels
#   and more steps before it can pay off. Its steps are capped here to keep the notebook short (and in the
#   smoke profile it runs on fewer draws, so its comparisons there say they rest on too few draws);
#   lesson 07 trains it on all labels and shows where it ends up.
#
# Where exactly the lines cross depends on the data, the encoder and the training budget; on other
# tasks a classic baseline can stay ahead for longer. Measure on your task, as here, before you decide.
#
# ## 4. The kinds of transfer, and where this course teaches them
#
# Transfer learning reuses knowledge from a **source** (a task or domain with plenty of data, e.g. text
# from the web) for a **target** (our task, with few labels). The literature sorts methods by *what* is
# transferred:
#
# | kind | what is transferred | typical methods | lesson |
# |---|---|---|---|
# | instance-based | source *examples*, re-weighted so that they look like target examples | importance weights from a domain classifier, KMM, KLIEP, TrAdaBoost | [02](02_instance_based.ipynb) |
# | feature-based | a *representation* in which source and target look alike | frozen pretrained features (the frozen-encoder curve above), CORAL, subspace alignment, TCA, MMD | [03](03_feature_based.ipynb) |
# | parameter- (model-) based | the *weights*: the source model is the starting point, or shares parts with the target model | fine-tuning (the fine-tuning curve above), freezing schedules, layer-wise learning rates, L2-SP | [04](04_model_based.ipynb), [07](07_bert_fine_tuning.ipynb), [08](08_resnet_image_transfer.ipynb), [11](11_parameter_efficient_fine_tuning.ipynb) |
# | relation-based | *relations* between examples or outputs (which pairs are close, how outputs relate) | relational knowledge distillation, multi-task heads | [09](09_distillation_multitask_relations.ipynb) |
#
# **Domain adaptation** ([05](05_domain_adaptation.ipynb)) cuts across these kinds: the target has
# *no* labels at all, only unlabelled examples, and the model is trained so that its features cannot tell
# the domains apart (adversarially, DANN, or by matching statistics, Deep CORAL).
#
# ## 5. One objective behind many methods: $L(\theta) = L_{source}(\theta) + \lambda\,L_{target}(\theta)$
#
# Many transfer methods train one set of parameters $\theta$ on both data sets at once: the average loss
# on source examples plus $\lambda$ times the average loss on target examples. $\lambda$ sets how much the
# target pulls against the source:
#
# * $\lambda = 0$: the target is ignored; we get a **source-only** model and hope the domains are alike;
# * small $\lambda$: the plentiful source data dominates and the few target labels nudge the solution;
# * large $\lambda$: the target dominates and the source acts as a regulariser (it keeps the solution
#   sensible where the target labels say nothing);
# * $\lambda \to \infty$: **target only**, the source is forgotten.
#
# Pretraining then fine-tuning is the *sequential* version: first minimise $L_{source}$, then minimise
# $L_{target}$ starting from there; the source survives only through the starting point (lesson 04 adds an
# explicit pull back towards it, L2-SP). Instance weighting (lesson 02) gives every source example its own
# weight instead of one shared $\lambda$.
#
# Here is the objective on real data. **Source:** sentiment tweets about airlines and brands (balanced
# positive / negative); **target:** our critic snippets with a few labels. The model is a logistic
# regression on the frozen encoder's features; the sample weights make its training loss exactly
# $L_{source} + \lambda L_{target}$ (each source example weighs $1/n_s$, each target example $\lambda/n_t$).
#
# $\lambda$ is a choice made by looking at scores, so it is made on the **validation** snippets (a fixed
# sample of the validation split, as large as the test sample): for each labelled draw, every model is
# scored on validation and on test, the finite $\lambda$ with the best validation accuracy is picked, and
# only that pick's test accuracy is reported against target only.

# %%
tweets = datasets.load_tweets()
source = datasets.sample_per_class(tweets.train, settings["source"] // 2, seed=0)
source_features = embeddings.encode_texts(source.x, model_name, device=lesson.device, progress=False)
# λ is chosen on the validation snippets `val` (section 2); the test set only reports
val_features = embeddings.encode_texts(val.x, model_name, device=lesson.device, progress=False)
LAMBDAS = [0.0, 0.1, 1.0, 10.0, 100.0, float("inf")]


def joint_objective_accuracy(labelled: datasets.Part, lam: float) -> tuple[float, float]:
    """Logistic regression minimising L_source + lam * L_target (lam = inf: target only).

    Returns (validation accuracy, test accuracy) of the one trained model.
    """
    target_x = np.stack([features[t] for t in labelled.x])
    if np.isinf(lam):
        x, y, w = target_x, labelled.y, np.full(len(labelled), 1.0 / len(labelled))
    else:
        x, y = np.vstack([source_features, target_x]), np.concatenate([source.y, labelled.y])
        w = np.concatenate([np.full(len(source), 1.0 / len(source)), np.full(len(labelled), lam / len(labelled))])
    model = LogisticRegression(C=1000.0, max_iter=5000).fit(x, y, sample_weight=w)
    return model.score(val_features, val.y), model.score(test_features, test.y)


def lambda_name(lam: float) -> str:
    """How a value of λ is shown in tables."""
    return "∞ (target only)" if np.isinf(lam) else ("0 (source only)" if lam == 0 else f"{lam:g}")


lambda_rows = []
for n in [n for n in sizes if n <= 256]:
    for s in seeds:
        for lam in LAMBDAS:
            val_accuracy, test_accuracy = joint_objective_accuracy(subsets[(n, s)], lam)
            lambda_rows.append({"n": n, "lambda": lambda_name(lam), "seed": s, "val_accuracy": val_accuracy,
                                "accuracy": test_accuracy})  # "accuracy" is the test score
lambda_frame = pd.DataFrame(lambda_rows)
lambda_table, val_table = ((lambda_frame.groupby(["n", "lambda"], sort=False)[column].mean()
                            .unstack("lambda")[[lambda_name(lam) for lam in LAMBDAS]])
                           for column in ("accuracy", "val_accuracy"))
print(f"validation snippets: {len(val)}; always answering 'fresh' scores "
      f"{float(np.mean(val.y == np.bincount(test.y).argmax())):.3f} on them. Mean validation accuracy:")
val_table.round(3)

# %%
fig, ax = plt.subplots(figsize=(6.4, 3.4))
positions = np.arange(len(LAMBDAS))
for n, row in val_table.iterrows():
    ax.plot(positions, row.values, marker="o", label=f"{n} target labels")
ax.set_xticks(positions, val_table.columns, rotation=20)
ax.set(title="Source = tweets, target = critic snippets: validation accuracy against λ",
       xlabel="λ (weight of the target loss)", ylabel="target validation accuracy")
ax.legend(fontsize="small")
plt.show()

# the pick: for each draw, the finite λ with the best validation accuracy (the first one on a tie)
FINITE = [lambda_name(lam) for lam in LAMBDAS[1:-1]]
finite = lambda_frame[lambda_frame["lambda"].isin(FINITE)]
picks = finite.loc[finite.groupby(["n", "seed"], sort=False)["val_accuracy"].idxmax()].set_index(["n", "seed"])
picks["target only (test)"] = lambda_frame[lambda_frame["lambda"] == lambda_name(float("inf"))].set_index(
    ["n", "seed"])["accuracy"]
picks = picks.rename(columns={"lambda": "λ picked on validation", "val_accuracy": "its validation accuracy",
                              "accuracy": "its test accuracy"})
display(picks.round(3))
source_only = float(lambda_table.iloc[:, 0].mean())  # λ = 0 ignores the draw: one model, scored on test
target_only_mean = float(lambda_table.iloc[:, -1].mean())
print(f"test: source only (λ = 0) {source_only:.3f}; target only (λ = ∞) {target_only_mean:.3f} on average; "
      f"always 'fresh' {majority:.3f}")

lambda_seen = [
    claims.claim("source_only_vs_constant", source_only > majority,
                 f"Source only (λ = 0) scores {source_only:.3f} on the target test snippets, above always answering "
                 f"'fresh' ({majority:.3f}): the tweets alone carry some signal about films.",
                 f"Source only (λ = 0) scores {source_only:.3f} on the target test snippets, not above always "
                 f"answering 'fresh' ({majority:.3f}): trained on the tweets alone, the model is no better than "
                 "ignoring the snippet."),
    # λ = 0 gives the same model for every draw; target only is scored on every (size, draw)
    stated("target_only_vs_source_only", "Over all sizes and draws: ", evidence.compare(
        picks["target only (test)"], [source_only] * len(picks), "target only (λ = ∞)", "source only (λ = 0)"))]
lambda_vs_target = {n: evidence.compare(picks.loc[n, "its test accuracy"], picks.loc[n, "target only (test)"],
                                        "source + target (λ picked on validation)", "target only")
                    for n in lambda_table.index}
lambda_seen += [stated(f"source_helps_at_{n}", f"With {n} target labels: ", result)
                for n, result in lambda_vs_target.items()]
display(Markdown("**What this run shows** (test accuracy):\n\n" + "\n".join(f"- {t}" for t in lambda_seen)))

# %% [markdown]
# How to read it (the list above says what this run measured). A **source-only** model ($\lambda = 0$)
# can be poor on the target: airline tweets are another domain, with another share of positives, and words
# like *delay* or *cancelled* say nothing about films. Whether *keeping* the source on top of the target
# labels helps is an empirical question, and the answer can change with the number of target labels and
# with the draw: a finite $\lambda$ wins where the source's extra examples regularise more than its mismatch
# misleads, and target-only wins where the mismatch dominates. A gain of a point or so on a few draws is
# within the draw-to-draw spread unless the paired comparison says otherwise. When a source makes the target
# *worse* than ignoring it, that is **negative transfer**; $\lambda$ (or one weight per source example,
# lesson 02) is the knob that limits it, and it has to be chosen on target validation data, as here, not
# assumed.
#
# ## 6. Exercises
#
# Each exercise has an instant check against the course's reference; in the student version each answer
# is a stub, and its check says "not attempted" until you replace the stub and rerun the cell.
#
# **Exercise 1 (warm-up).** Which kind of transfer (one of `"instance"`, `"feature"`, `"parameter"`,
# `"relation"`) is each of these? (a) training a logistic regression on a frozen encoder's vectors;
# (b) re-weighting airline tweets so that they resemble film reviews before training on them; (c) starting
# from pretrained weights and training all of them on the target; (d) teaching a small model to reproduce
# the pairwise distances between a large model's sentence vectors. Return the four answers in order.

# %%
# NBVAL_CHECK_OUTPUT
from transfer_utils.core.exercises import check_function, check_prediction, check_value, direction
from transfer_utils.solutions import lesson01 as solutions


def my_transfer_kinds() -> list[str]:
    ### BEGIN SOLUTION
    return ["feature", "instance", "parameter", "relation"]
    ### END SOLUTION


check_value(my_transfer_kinds, solutions.transfer_kinds(), name="exercise 1 (kinds of transfer)",
            hint="ask what is carried over: a representation, examples, weights, or relations?")

# %% [markdown]
# **Exercise 2.** The lesson's headline number at n labels is the *gain of transfer*: the best seed-mean
# accuracy among the transfer methods minus the best among the methods without transfer. Write
# `my_gain_at(rows, n, transfer, baseline)` for rows like the lesson's `curve` (dicts with keys `"n"`,
# `"method"`, `"seed"`, `"accuracy"`): average each method's accuracy over its seeds at `n` only, then take
# the best of each group and subtract. A method that was not run at `n` is skipped (fine-tuning runs at fewer
# sizes than the others). Comparing *bests* matters: a transfer method only counts as a gain over the
# strongest baseline, not over the weakest.

# %%
# NBVAL_CHECK_OUTPUT
def my_gain_at(rows: list[dict], n: int, transfer: list[str], baseline: list[str]) -> float:
    ### BEGIN SOLUTION
    def seed_mean(method: str) -> float | None:
        values = [r["accuracy"] for r in rows if r["n"] == n and r["method"] == method]
        return float(np.mean(values)) if values else None

    def best(methods: list[str]) -> float:
        return max(m for m in (seed_mean(name) for name in methods) if m is not None)

    return best(transfer) - best(baseline)
    ### END SOLUTION


def curve_rows(n: int, accuracies: dict[str, list[float]]) -> list[dict]:
    """Rows in the format of `curve`: one per method and seed."""
    return [{"n": n, "method": m, "seed": s, "accuracy": a} for m, values in accuracies.items()
            for s, a in enumerate(values)]


gain_cases = [
    (curve, 64, TRANSFER, NO_TRANSFER),  # the lesson's own curve
    (curve, sizes[-1], TRANSFER, NO_TRANSFER),  # its largest size, where fine-tuning may not have run
    (curve_rows(16, {"a": [0.7, 0.5], "b": [0.65, 0.65], "c": [0.6, 0.6], "d": [0.5, 0.9]})
     + curve_rows(64, {"a": [0.99], "c": [0.1]}), 16, ["a", "b"], ["c", "d"]),  # seed means; other sizes ignored
    (curve_rows(16, {"a": [0.6], "c": [0.6]}), 16, ["a", "not run"], ["c"]),  # a tie, and a method not run at n
    (curve_rows(16, {"a": [0.55], "b": [0.52], "c": [0.8]}), 16, ["a", "b"], ["c"]),  # a negative gain
]
check_function(my_gain_at, lc.gain_at, gain_cases, name="exercise 2 (gain of transfer)")

# %% [markdown]
# **Exercise 3.** Plain *pooling*, concatenating the source and the target examples and training on all of
# them with weight 1 each, is also a point of $L_{source} + \lambda L_{target}$ (up to a constant factor,
# which does not change the best $\theta$). Which $\lambda$? Write `my_pooling_lambda(n_source, n_target)`.
# Then work it out for this lesson's tweets and its smallest labelled set: does plain pooling let the
# source or the target dominate, and where does that point lie on the validation plot of section 5?

# %%
# NBVAL_CHECK_OUTPUT
def my_pooling_lambda(n_source: int, n_target: int) -> float:
    ### BEGIN SOLUTION
    # pooled loss = (n_s L_s + n_t L_t) / (n_s + n_t), proportional to L_s + (n_t / n_s) L_t
    return n_target / n_source
    ### END SOLUTION


pooling_cases = [(len(source), sizes[0]), (len(source), 256), (5, 5), (7, 0), (1, 1000)]
check_function(my_pooling_lambda, solutions.pooling_lambda, pooling_cases, name="exercise 3 (the λ of pooling)")

# %% [markdown]
# **Exercise 4.** The rule behind every choice in this course: choose on validation, report test once.
# Write `my_pick_on_validation(lambdas, val_accuracy, test_accuracy)` that returns, as a tuple, the $\lambda$
# with the best validation accuracy (the first one on a tie) and *that* $\lambda$'s test accuracy. It is not
# the best test accuracy of the list: reporting the best test score over several candidates would be
# optimistic by construction, since the test set itself would have made the choice.

# %%
# NBVAL_CHECK_OUTPUT
def my_pick_on_validation(lambdas: list[float], val_accuracy: list[float],
                          test_accuracy: list[float]) -> tuple[float, float]:
    ### BEGIN SOLUTION
    best = int(np.argmax(val_accuracy))  # argmax returns the first of several equal maxima
    return lambdas[best], test_accuracy[best]
    ### END SOLUTION


one_draw = finite[(finite["n"] == sizes[0]) & (finite["seed"] == seeds[0])]  # this lesson's finite λ, one draw
pick_cases = [
    ([float(v) for v in one_draw["lambda"]], one_draw["val_accuracy"].tolist(), one_draw["accuracy"].tolist()),
    ([0.1, 1.0, 10.0], [0.60, 0.70, 0.65], [0.80, 0.62, 0.75]),  # the best on test is not the pick
    ([0.1, 1.0, 10.0], [0.70, 0.70, 0.60], [0.50, 0.90, 0.90]),  # a tie on validation: the first
    ([1.0, 100.0], [0.55, 0.55], [0.6, 0.7]),  # all equal on validation
    ([10.0], [0.5], [0.4]),  # a single candidate
]
check_function(my_pick_on_validation, solutions.pick_on_validation, pick_cases,
               name="exercise 4 (pick on validation)")

# %% [markdown]
# **Exercise 5 (experiment).** Negative transfer on purpose. Keep the tweets as the source but flip every
# one of their labels, so that the source now teaches the opposite of the target's rule. The cell after
# next trains $L_{source} + \lambda L_{target}$ with $\lambda = 1$ on the smallest labelled sets with the
# flipped tweets and scores the validation snippets. Predict before you run: will that validation accuracy
# be "higher", "lower" or "about the same" (within five points) as training on the target labels alone
# (λ = ∞ in section 5)? Put your prediction in `my_flipped_source_prediction`, then run the cell below it.

# %%
def my_flipped_source_prediction() -> str:
    ### BEGIN SOLUTION
    return "lower"
    ### END SOLUTION


# %%
n_small = sizes[0]


def flipped_source_val_accuracy(labelled: datasets.Part) -> float:
    """Validation accuracy of L_source + 1 · L_target when every source label is flipped."""
    target_x = np.stack([features[t] for t in labelled.x])
    x, y = np.vstack([source_features, target_x]), np.concatenate([1 - source.y, labelled.y])
    w = np.concatenate([np.full(len(source), 1.0 / len(source)), np.full(len(labelled), 1.0 / len(labelled))])
    return LogisticRegression(C=1000.0, max_iter=5000).fit(x, y, sample_weight=w).score(val_features, val.y)


flipped_mean = float(np.mean([flipped_source_val_accuracy(subsets[(n_small, s)]) for s in seeds]))
val_at_small = lambda_frame[lambda_frame["n"] == n_small].groupby("lambda")["val_accuracy"].mean()
target_alone, honest_source = float(val_at_small[lambda_name(float("inf"))]), float(val_at_small[lambda_name(1.0)])
outcome = direction(target_alone, flipped_mean, margin=0.05)
check_prediction(my_flipped_source_prediction, outcome, name="exercise 5 (flipped source)",
                 choices=["higher", "lower", "about the same"],
                 evidence=f"mean validation accuracy with {n_small} target labels over {len(seeds)} draws: target only "
                          f"{target_alone:.3f} → flipped tweets at λ = 1 {flipped_mean:.3f} (honest tweets at λ = 1: "
                          f"{honest_source:.3f}; always 'fresh' {float(np.mean(val.y == 1)):.3f})")

# %% [markdown]
# **Exercise 6 (open, optional).** Rerun this notebook with more label sizes (or more seeds) from the
# command line and see whether fine-tuning keeps pulling away from the frozen encoder:
#
# ```bash
# python -m transfer_utils run 01 -p label_sizes "[16, 64, 256, 1024, 4096]" -p n_seeds 3 --out data/runs/01_more
# ```
#
# ## 7. Results

# %%
lesson.save_metrics({
    "trained_in_bf16": int(precision.resolve_precision(mixed_precision, lesson.device) == "bf16"),
    "curve": [{k: r[k] for k in ("n", "method", "seed", "accuracy")} for r in curve],
    "gain_at_64": gain_at_64,
    "gain_at_256": gain_at_256,
    "majority_accuracy": majority,
    "tfidf_all_labels_accuracy": all_labels,
    "scratch_mean_accuracy": float(np.mean([r["accuracy"] for r in curve if r["method"] == SCRATCH])),
    "scratch_largest_accuracy": float(np.mean(scratch_largest)),
    "n_max": sizes[-1],
    "lambda_curve": lambda_rows,
    "source_only_accuracy": source_only,
    "n_test": len(test),
    "n_val": len(val),
    **claims.as_metrics(),
})
assert gain_at_64 > 0 and gain_at_256 > 0, "transfer should beat both no-transfer baselines at 64 and 256 labels"
assert lc.mean_accuracy(curve, sizes[-1], SCRATCH) > lc.mean_accuracy(curve, sizes[0], SCRATCH), \
    "the from-scratch network should learn more with more labels"
assert source_only < lambda_table.iloc[:, -1].mean(), "the source-only model should be worse than target-only"
if lesson.profile != "smoke":  # three draws: frozen features beat TF-IDF beyond twice the paired standard error
    assert next(r for r in claims.records if r["claim"] == "scratch_network_trains")["holds"], "the from-scratch baseline must learn (leave the constant predictor)"
    for n in (64, 256):
        assert frozen_vs_tfidf[n].winner == FROZEN, frozen_vs_tfidf[n].sentence()

# %% [markdown]
# ## Summary and what next

# %%
display(Markdown(claims.markdown()))

# %% [markdown]
# * Which model is best depends on how many labels you can afford: measure the learning curve on your own
#   task, against a classic baseline that trained properly (a network stuck at the majority class is not one).
# * Transfer comes in four kinds (instance, feature, parameter, relation); domain adaptation handles a
#   target without labels.
# * $L_{source} + \lambda L_{target}$: $\lambda$ trades the source's extra data against its mismatch;
#   a far-away source can hurt (negative transfer). Choose $\lambda$ on validation data, report test once.
#
# **Next:** [02 · Instance-based transfer](02_instance_based.ipynb) re-weights source examples one by one;
# [07 · BERT fine-tuning](07_bert_fine_tuning.ipynb) builds the fine-tuning pipeline used here, step by step.
