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
# # 00 · Set-up and tour
#
# **Goals.** By the end of this notebook you will
# 1. know that your machine can run the whole course offline: libraries, device, and every model and
#    dataset the lessons use;
# 2. know how lessons are parameterised (`seed`, `device`, `profile`, ...) and how to rerun or sweep
#    them from the command line;
# 3. have tried transfer learning once, on real data: a pretrained sentence encoder, kept frozen, against a
#    bag-of-words model when only a few dozen labelled examples exist, each scored beside the constant
#    predictor.
#
# **Prerequisites.** Python and a little scikit-learn. Nothing about transfer learning yet.
#
# **Time.** for you ≈ 15 min reading + 25 min exercises; for the machine, smoke ≈ 0.5 min · default ≈ 0.7 min on a 2-core CPU (measured by `bench/lesson_times.py`).

# %%
import os
import platform
import sys

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

# %% tags=["parameters"]
seed: int = 0  # seeds the sampling of labelled examples and everything random after it
device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps"
profile: str = os.environ.get("COURSE_PROFILE", "default")  # "smoke" (CI, ~1 min), "default" (laptop), "full"
metrics_path: str = ""  # where the metrics JSON goes; "" means data/runs/<profile>/00_setup_and_tour.metrics.json
n_labels: int = 64  # labelled training snippets in the first taste of transfer
model_name: str = "minilm"  # the frozen text encoder: "minilm" (offline) or a hub name such as "bert-base-uncased"

# %%
from transfer_utils.course import asset_checks
from transfer_utils.data import assets
from transfer_utils.data import datasets
from transfer_utils.core import evidence
from transfer_utils.core import plots
from transfer_utils.models import embeddings
from transfer_utils.models.pretrained import check_text_model
from transfer_utils.core.runtime import check_int, check_seed, start_lesson

lesson = start_lesson("00_setup_and_tour", seed=seed, device=device, profile=profile, metrics_path=metrics_path)
check_int("n_labels", n_labels, low=2, high=2000)  # the training split holds 8,965 snippets
check_text_model("model_name", model_name)
plots.setup()
settings = lesson.pick(smoke={"seeds": 3, "test_size": 600}, default={"seeds": 5, "test_size": None})
check_seed(seed, settings["seeds"])  # draws use seed, seed + 1, ...
claims = evidence.Claims()  # the sentences this run states about its results, rendered from its numbers
print(lesson, settings)

# %% [markdown]
# The cell above is the pattern every lesson follows. The cell tagged `parameters` holds the knobs
# with their defaults; tools such as papermill insert a new cell right after it to override them.
# `start_lesson` then checks the common parameters (a bad value stops here with one line naming the
# parameter and the values it accepts), seeds Python, NumPy and PyTorch, fixes the number of CPU
# threads so timings are comparable, and picks the device. `lesson.pick(...)` chooses sizes by profile:
#
# | profile | meant for | budget per notebook |
# |---|---|---|
# | `smoke` | CI and a quick check that everything runs | about a minute on 2 CPU cores |
# | `default` | a learner on a laptop CPU | a few minutes |
# | `full` | a GPU and/or the canonical online models (`bert-base-uncased`, ImageNet ResNet-18) | longer |
#
# ## 1. Your environment

# %%
import sklearn
import torch
import transformers

import psutil

environment = {
    "python": platform.python_version(),
    "platform": platform.platform(terse=True),
    "torch": torch.__version__,
    "transformers": transformers.__version__,
    "scikit-learn": sklearn.__version__,
    "device": lesson.device.type,
    "torch threads": lesson.threads,
    "CPU cores": os.cpu_count(),
    "memory (GiB)": round(psutil.virtual_memory().total / 2**30, 1),
}
pd.Series(environment, name="value").to_frame()

# %% [markdown]
# ## 2. Every asset, loaded for real
#
# The course never downloads anything while it runs. Each model and dataset comes from a package
# installed by `make setup` (or from the operating system's package manager), and
# `transfer_utils.data.assets` is the one place that knows where. The table below does not just check that
# files exist: it loads every model (and runs it once) and every dataset (with its fixed
# train / validation / test split). The same table is printed by `python -m transfer_utils assets`.

# %%
status = pd.DataFrame(asset_checks.status(load=True))
status

# %%
n_loaded = int((status["status"] == "loads").sum())
claims.claim("assets_load_offline", n_loaded == len(status),
             f"The course runs offline: all {n_loaded} models and datasets above loaded from installed packages.",
             f"Only {n_loaded} of the {len(status)} models and datasets loaded: run `make setup` before the lessons.")
assert n_loaded == len(status), f"assets that did not load: {status.loc[status.status != 'loads', 'asset'].tolist()}"
print(f"all {n_loaded} offline assets load")

# %% [markdown]
# A missing asset never ends in a traceback from deep inside a library. Ask for something that is not
# on this machine and the error says what to run:

# %%
try:
    from transfer_utils.models.pretrained import resolve_text_model

    resolve_text_model("some-org/a-model-that-is-not-cached")
except assets.AssetMissingError as err:
    print(str(err)[:300])

# %% [markdown]
# ## 3. Rerunning and sweeping lessons
#
# Every lesson can run headless, with any parameter changed, from a terminal in the repository:
#
# ```bash
# python -m transfer_utils run 00 --profile smoke -p seed 3 -p n_labels 128   # one run
# python -m transfer_utils sweep 00 -p seed 0,1,2 -p n_labels 16,64,256 --out data/runs/sweep00 --plot gain
# make course                                                                # every lesson, default profile
# ```
#
# `run` writes the executed notebook and `<notebook>.metrics.json` into `--out`; `sweep` runs the grid
# and collects one row per run in `results.csv` (and, with `--plot`, a mean ± spread plot). The metrics
# file always has the same shape:
# `{"notebook", "profile", "seed", "seconds", "metrics": {name: number or list}}`.
#
# The course map below comes from measurements (`python bench/lesson_times.py`), not from guesses.

# %%
from transfer_utils.course.catalog import lesson_rows

pd.DataFrame(lesson_rows()).drop(columns="code (and tests)")  # the README's map links each lesson's code

# %% [markdown]
# ## 4. A first taste of transfer
#
# The task: decide whether a film critic's one-sentence snippet is *fresh* (positive) or *rotten*
# (negative). We pretend we could only afford to label `n_labels` snippets. Two models learn from the
# same few examples:
#
# * **bag of words**: TF-IDF word and word-pair counts, then logistic regression. It knows nothing
#   about English beyond the words it sees in those few snippets.
# * **frozen pretrained encoder**: a 6-layer BERT (MiniLM, 22.7M parameters) that was trained by
#   others on a huge amount of text turns each snippet into a 384-number vector (the average of its
#   token vectors); a logistic regression learns on top. The encoder is not changed at all: this is
#   *feature-based* transfer, the simplest kind. In symbols, with $f(x)$ the encoder's vector for a
#   snippet $x$, the model is $P(\text{fresh} \mid x) = \sigma\big(w^\top f(x) + b\big)$: only $w$ and $b$
#   are learned from our labels, $f$ stays as pretraining left it.
#
# Every score is on the same fixed test split, averaged over several random draws of the labelled set.

# %%
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

snippets = datasets.load_rotten_tomatoes()
print(snippets.summary())
test = snippets.test if settings["test_size"] is None else datasets.sample_n(snippets.test, settings["test_size"], 0)
print(f"test snippets scored: {len(test)}; example: {test.x[0]!r} → {snippets.classes[test.y[0]]}")

# %%
test_features = embeddings.encode_texts(test.x, model_name, device=lesson.device)
rows = []
for run in range(settings["seeds"]):
    labelled = datasets.sample_n(snippets.train, n_labels, seed=lesson.seed + run)
    bow = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=10, max_iter=1000))
    bow.fit(labelled.x, labelled.y)
    train_features = embeddings.encode_texts(labelled.x, model_name, device=lesson.device, progress=False)
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(train_features, labelled.y)
    rows.append({"run": run, "bag of words": bow.score(test.x, test.y),
                 "frozen MiniLM + logistic regression": probe.score(test_features, test.y)})
results = pd.DataFrame(rows).set_index("run")
majority = evidence.constant_baseline(test.y, "accuracy")  # the constant predictor: always the larger class
print(f"constant predictor (always 'fresh') on the same test snippets: {majority:.3f}")
results.agg(["mean", "std"]).round(3)

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3))
for i, column in enumerate(results.columns):
    ax.scatter([i] * len(results), results[column], alpha=0.6)
    ax.errorbar(i, results[column].mean(), yerr=results[column].std(), fmt="_", markersize=30, color="black")
ax.axhline(majority, linestyle="--", color="grey", label=f"always 'fresh' ({majority:.3f})")
ax.set_xticks(range(len(results.columns)), results.columns)
ax.set(title=f"Test accuracy with {n_labels} labelled snippets ({len(results)} draws)", ylabel="test accuracy",
       xlim=(-0.5, len(results.columns) - 0.5))
ax.legend(loc="lower right")
plt.show()

# %%
acc_bow = results["bag of words"].mean()
acc_probe = results["frozen MiniLM + logistic regression"].mean()
gain = acc_probe - acc_bow
print(f"bag of words {acc_bow:.3f} | frozen encoder {acc_probe:.3f} | gain {gain:+.3f} | always-fresh {majority:.3f}")

# paired by labelled draw; the constant predictor scores the same on every draw
PROBE, BOW, CONSTANT = "frozen MiniLM + logistic regression", "bag of words", "always 'fresh'"
constant_runs = [majority] * len(results)
bow_vs_constant = evidence.compare(results[BOW], constant_runs, BOW, CONSTANT)
probe_vs_constant = evidence.compare(results[PROBE], constant_runs, PROBE, CONSTANT)
probe_vs_bow = evidence.compare(results[PROBE], results[BOW], PROBE, BOW)
seen = [claims.comparison("bag_of_words_vs_constant", bow_vs_constant),
        claims.comparison("probe_vs_constant", probe_vs_constant),
        claims.comparison("probe_vs_bag_of_words", probe_vs_bow)]
display(Markdown(f"**What this run shows** ({n_labels} labelled snippets, {len(results)} draws, "
                 f"{len(test)} test snippets):\n\n" + "\n".join(f"- {text}" for text in seen)))

# %% [markdown]
# Why the two can differ: with a few dozen labels the bag-of-words model knows only the words in those
# snippets, and a test snippet that uses other words gives it nothing to go on. The frozen encoder already
# places *masterpiece* and *a joy* close together, so a linear model on its features can learn from fewer
# examples. Two remarks:
#
# * one number of labels says nothing about others: with more labels the bag of words sees more words.
#   Lesson 01 draws the full learning curve, up to all 8,965 training snippets;
# * the encoder is frozen here. Fine-tuning it (lesson 07) also changes its weights.

# %% [markdown]
# ## 5. Exercises
#
# Each exercise has an instant check that compares your answer with the course's reference. In the
# student version of this notebook (`python -m transfer_utils student`) each answer is a stub that
# raises `NotImplementedError`, and its check says "not attempted": replace the stub with your code and
# rerun the cell. The exercises go from a warm-up to an experiment.
#
# **Exercise 1 (warm-up).** Every accuracy in this course is printed beside a constant predictor's.
# Write `my_majority_accuracy(train_y, test_y)`: the accuracy on the labels `test_y` of the rule "always
# predict the most frequent label of `train_y`" (on a tie, the smaller label, as `np.bincount(...).argmax()`
# picks it). The rule is chosen on training labels only; a transferred model that does not clearly
# beat it has learnt nothing about the task.

# %%
# NBVAL_CHECK_OUTPUT
from transfer_utils.core.exercises import check_function, check_prediction, check_value, direction
from transfer_utils.solutions import lesson00 as solutions


def my_majority_accuracy(train_y: np.ndarray, test_y: np.ndarray) -> float:
    ### BEGIN SOLUTION
    most_common = np.bincount(train_y).argmax()
    return float(np.mean(test_y == most_common))
    ### END SOLUTION


majority_cases = [(snippets.train.y, snippets.val.y),  # the real snippets: train and validation splits
                  (np.array([0, 1]), np.array([1, 1, 0])),  # a tie in the training labels
                  (np.array([2]), np.array([2])),  # a single example
                  (np.array([1, 1, 0]), np.array([0, 0])),  # the majority label never occurs in test_y
                  (np.array([0, 2, 2, 1]), np.array([2, 2, 0, 1, 1]))]  # three classes
check_function(my_majority_accuracy, solutions.majority_accuracy, majority_cases,
               name="exercise 1 (majority baseline)")

# %% [markdown]
# **Exercise 2.** Before transferring anything to a new task, look at its classes. Load the BBC News
# topics with `datasets.load_bbc_news()` and return the name of the largest class in its training split
# and how many training articles it holds, as a tuple `(name, count)` (the class names are in `.classes`,
# the labels in `.train.y`). Its share of the training set is what a constant predictor scores there.

# %%
# NBVAL_CHECK_OUTPUT
def my_bbc_largest_class() -> tuple[str, int]:
    ### BEGIN SOLUTION
    bbc = datasets.load_bbc_news()
    counts = np.bincount(bbc.train.y)
    return bbc.classes[int(counts.argmax())], int(counts.max())
    ### END SOLUTION


check_value(my_bbc_largest_class, solutions.largest_class(datasets.load_bbc_news()),
            name="exercise 2 (BBC largest class)", hint="count the training labels with np.bincount")

# %% [markdown]
# **Exercise 3.** Write mean pooling, the step that turns the encoder's token vectors into one vector
# per snippet: average the token vectors `hidden` (shape `[batch, length, dim]`) over the positions
# where `mask` (shape `[batch, length]`, 1 for real tokens, 0 for padding) is 1. Padding must not count:
# a batch pads short snippets to the longest one, and a snippet's vector must not depend on its
# neighbours in the batch. A row with no real token at all gets a vector of zeros (do not divide by zero).

# %%
# NBVAL_CHECK_OUTPUT
def my_mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    ### END SOLUTION


generator = torch.Generator().manual_seed(0)
pool_cases = [(torch.randn(2, 5, 4, generator=generator), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])),
              (torch.randn(1, 3, 2, generator=generator), torch.tensor([[1, 0, 0]])),  # one real token
              (torch.full((1, 4, 3), 7.0), torch.tensor([[1, 1, 0, 0]])),  # all values equal
              (torch.randn(1, 1, 5, generator=generator) * 1e4, torch.tensor([[1]])),  # length one, large values
              (torch.randn(2, 3, 2, generator=generator), torch.tensor([[0, 0, 0], [0, 1, 1]]))]  # a row of padding only
check_function(my_mean_pool, embeddings.mean_pool, pool_cases, name="exercise 3 (mean pooling)")

# %% [markdown]
# **Exercise 4 (experiment).** Is it the *pretraining* that helps, or merely turning each snippet into a
# vector of numbers and fitting a logistic regression on it? The cell after next swaps the frozen encoder
# for one that learnt nothing: every word piece gets a random vector (as many numbers as the encoder's),
# and a snippet is the average of its word pieces' vectors. The labelled draws, the logistic regression
# and the test snippets stay the same. Predict before you run: will the test accuracy with random vectors
# be "higher", "lower" or "about the same" as with the pretrained encoder (within two points)? Put your
# prediction in `my_random_vectors_prediction`, then run the cell below it.

# %%
def my_random_vectors_prediction() -> str:
    ### BEGIN SOLUTION
    return "lower"
    ### END SOLUTION


# %%
from transfer_utils.models.pretrained import load_tokenizer

word_piece_tokenizer = load_tokenizer(model_name)
random_table = np.random.default_rng(lesson.seed).standard_normal(
    (len(word_piece_tokenizer), test_features.shape[1]), dtype=np.float32)  # one random vector per word piece


def random_vectors(texts: list[str]) -> np.ndarray:
    """Each text as the mean of its word pieces' random vectors (zeros for an empty text)."""
    pieces = word_piece_tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=128)["input_ids"]
    return np.stack([random_table[ids].mean(axis=0) if ids else np.zeros(random_table.shape[1], np.float32)
                     for ids in pieces])


random_test = random_vectors(test.x)
random_accuracy = []
for run in range(settings["seeds"]):
    draw = datasets.sample_n(snippets.train, n_labels, seed=lesson.seed + run)  # the same draws as section 4
    random_probe = LogisticRegression(C=1.0, max_iter=2000).fit(random_vectors(draw.x), draw.y)
    random_accuracy.append(random_probe.score(random_test, test.y))
pretrained_mean, random_mean = acc_probe, float(np.mean(random_accuracy))
outcome = direction(pretrained_mean, random_mean, margin=0.02)
check_prediction(my_random_vectors_prediction, outcome, name="exercise 4 (random word vectors)",
                 choices=["higher", "lower", "about the same"],
                 evidence=f"mean test accuracy over {len(random_accuracy)} draws: pretrained encoder {pretrained_mean:.3f} → "
                          f"random word-piece vectors {random_mean:.3f} (bag of words {acc_bow:.3f}, "
                          f"always 'fresh' {majority:.3f})")

# %% [markdown]
# ## 6. Results
#
# The key numbers go to the metrics file, and the claims this notebook makes are asserted, so a broken
# lesson cannot pass silently in CI.

# %%
lesson.save_metrics({
    "assets_loaded": n_loaded,
    "assets_total": len(status),
    "n_labels": n_labels,
    "bow_accuracy": acc_bow,
    "probe_accuracy": acc_probe,
    "gain": gain,
    "majority_accuracy": majority,
    "runs": results.reset_index().to_dict("records"),
    **probe_vs_bow.as_metrics("probe_vs_bow"),
    **claims.as_metrics(),
})
assert n_loaded == len(status)
assert acc_probe > majority + 0.03, "the frozen encoder should clearly beat the majority class"
assert gain > 0.02, "with few labels the frozen encoder should beat bag of words"
# five draws (default): the paired gap must clear twice its standard error; smoke (three draws): once
assert probe_vs_bow.gap > (1 if lesson.profile == "smoke" else 2) * probe_vs_bow.standard_error, probe_vs_bow.sentence()
assert lesson.profile == "smoke" or probe_vs_bow.winner == PROBE, probe_vs_bow.sentence()

# %% [markdown]
# ## Summary and what next

# %%
display(Markdown(claims.markdown()))

# %% [markdown]
# * Lessons are parameterised notebooks: change `seed`, `profile` or a lesson's own knobs with papermill
#   (`python -m transfer_utils run ... -p NAME VALUE`), or sweep a grid.
# * A frozen pretrained encoder plus a linear model is transfer learning in its simplest form: the
#   knowledge comes from pretraining, only the linear model learns from our labels.
#
# **Next:** [01 · Why transfer](01_why_transfer.ipynb) draws the whole learning curve (training from scratch,
# frozen features, full fine-tuning) and names the four kinds of transfer the course covers.
