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
# # 10 · Applications: intent routing, sentiment monitoring, semantic search
#
# **Goals.** By the end of this notebook you will have built three small systems on frozen MiniLM sentence
# features, each end to end on real data, and measured each one the way its users would:
# 1. **customer service**: route a question to an intent from a handful of labelled questions per intent,
#    answer automatically only above a confidence threshold (chosen on validation) and hand the rest,
#    including questions the system was never meant to answer, to a person; read the accuracy / coverage
#    trade-off curve;
# 2. **sentiment monitoring**: carry a sentiment model trained on film critics to a stream of tweets,
#    estimate the share of negative tweets per time window, alert when it jumps, and score the alert on a
#    stream whose true jumps we know; see how the domain shift biases the estimated share and how a
#    prior / quantification correction (lesson 03's prior shift) repairs it;
# 3. **recommendation**: recommend news articles by nearest neighbours in embedding space, scored by
#    same-topic precision@k against a TF-IDF baseline, and a cold start (titles only) where transfer is
#    what makes it work.
#
# **Prerequisites.** [00](00_setup_and_tour.ipynb) (frozen MiniLM features and a linear probe),
# [03](03_feature_based.ipynb) (label shift and the EM prior estimate), [05](05_domain_adaptation.ipynb)
# (what a domain shift does to a classifier).
#
# **Time.** for you ≈ 40 min reading + 45 min exercises; for the machine, smoke ≈ 0.2 min · default ≈ 0.2 min on a 2-core CPU (measured by `bench/lesson_times.py`).

# %%
import inspect
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

# %% tags=["parameters"]
seed: int = 0  # first seed; the comparisons use seed, seed + 1, ..., seed + n_seeds - 1
device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps"
profile: str = os.environ.get("COURSE_PROFILE", "default")  # "smoke" (CI, ~1 min), "default" (laptop), "full"
metrics_path: str = ""  # "" means data/runs/<profile>/10_applications.metrics.json
model_name: str = "minilm"  # the frozen sentence encoder ("minilm" is offline)
n_seeds: int = 3  # seeds (labelled samples, streams, catalogues) behind every comparison
shots: int = 5  # labelled questions per intent (the smallest intent has 7 training questions)
unknown_intent: str = "trivia"  # the topic held out as questions the service cannot answer
target_accuracy: float = 0.8  # accuracy the automatic answers must reach on validation
tweet_labels: int = 300  # labelled tweets (half negative, half positive) that measure the error rates on tweets
window: int = 0  # tweets per monitoring window; 0 means the profile's choice (smoke 80, default 200)
n_windows: int = 0  # windows per stream; 0 means the profile's choice (smoke 24, default 40)
k: int = 10  # recommendations per article for precision at k

# %%
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from transfer_utils import applications as app
from transfer_utils.core import plots
from transfer_utils.core.evidence import Claims, compare, constant_baseline, spread, summarize
from transfer_utils.core.runtime import check_choice, check_float, check_int, check_seed, start_lesson
from transfer_utils.data import datasets
from transfer_utils.methods.instance import em_target_prior
from transfer_utils.models import embeddings
from transfer_utils.models.pretrained import check_text_model

lesson = start_lesson("10_applications", seed=seed, device=device, profile=profile, metrics_path=metrics_path)
claims = Claims()  # the sentences this run's numbers decide, shown in the summary and saved with the metrics
check_text_model("model_name", model_name)
check_int("n_seeds", n_seeds, low=1, high=20)
check_seed(seed, n_seeds)
check_int("shots", shots, low=1, high=7)
intents = datasets.load_chatterbot_questions()
check_choice("unknown_intent", unknown_intent, intents.classes)
check_float("target_accuracy", target_accuracy, low=0.5, high=1.0)
check_int("tweet_labels", tweet_labels, low=20, high=400)
window = check_int("window", window, low=0, high=400) or lesson.pick(smoke=80, default=200)
n_windows = check_int("n_windows", n_windows, low=0, high=200) or lesson.pick(smoke=24, default=40)
check_int("n_windows", n_windows, low=12, high=200)  # a stream needs room for two rises and their return
check_int("k", k, low=1, high=50)
plots.setup()
sizes = lesson.pick(smoke={"rt_train": 400, "rt_val": 200, "tweet_val": 800, "tweet_test": 600,
                           "bbc_catalogue": 200, "bbc_queries": 80},
                    default={"rt_train": 2000, "rt_val": None, "tweet_val": None, "tweet_test": None,
                             "bbc_catalogue": None, "bbc_queries": None})  # None: the whole split
seeds = [lesson.seed + i for i in range(n_seeds)]
print(lesson, sizes, {"window": window, "n_windows": n_windows}, "seeds:", seeds)


def subset(part: datasets.Part, n: int | None) -> datasets.Part:
    """The whole split, or a stratified sample of ``n`` rows (smoke profile)."""
    return part if n is None else datasets.sample_n(part, n, seed=lesson.seed)


def encode(texts: list[str], max_length: int = 128) -> np.ndarray:
    """Frozen MiniLM sentence features, L2-normalised (cached on disk by content)."""
    return normalize(embeddings.encode_texts(texts, model_name, max_length=max_length, device=lesson.device))


# %% [markdown]
# ## 1. Customer service: route a question, or hand it to a person
#
# A help desk receives free-text questions. A router maps each to one of the intents the service knows,
# where a stored answer waits; a question it cannot place confidently goes to a person. Two things make
# this hard in practice: each intent starts with only a few labelled example questions, and some
# questions belong to no intent at all (*out of scope*).
#
# **The data.** No customer-service intent benchmark (CLINC150, BANKING77, ...) can be installed offline
# here, so the lesson uses the closest real stand-in that can: the English questions of the ChatterBot
# dialogue corpus (PyPI `chatterbot-corpus`, BSD licence, user-contributed), labelled by the topic file
# each question sits in (`tech_support`, `money`, `coding`, `emotion`, ...). The topics play the
# intents. One topic, `unknown_intent` (general-knowledge trivia by default), is held out entirely: the
# router never sees it in training, and its questions are the ones that should go to a person.
#
# **The method.** Frozen MiniLM features plus a logistic regression trained on `shots` questions per
# intent; its largest class probability is the *confidence*. The regularisation strength is picked on the
# validation split, for MiniLM and for the TF-IDF baseline alike (same grid, same budget).

# %%
unknown = intents.classes.index(unknown_intent)
known = [c for c in intents.classes if c != unknown_intent]
print(intents.summary())
all_questions = intents.train.x + intents.val.x + intents.test.x
question_features = dict(zip(all_questions, encode(all_questions)))


def to_known(y: np.ndarray) -> np.ndarray:
    """Labels over the known intents (0 .. len(known) - 1), and -1 for the held-out topic."""
    names = np.array(intents.classes)[y]
    return np.array([known.index(n) if n != unknown_intent else -1 for n in names])


train_pool = intents.train.take(np.flatnonzero(intents.train.y != unknown))
val_part, test_part = intents.val, intents.test
val_y, test_y = to_known(val_part.y), to_known(test_part.y)
in_scope_test = test_y >= 0
print(f"known intents: {len(known)}; validation {len(val_part)} questions ({np.mean(val_y < 0):.0%} out of scope), "
      f"test {len(test_part)} ({np.mean(test_y < 0):.0%} out of scope)")
print("always answering the commonest known intent scores", round(constant_baseline(test_y[in_scope_test]), 3),
      "on the in-scope test questions")

# %%
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)


def featurizer(kind: str, fit_texts: list[str]):
    """Text → features: frozen MiniLM, or TF-IDF (word 1-2 grams) fitted on the labelled questions."""
    if kind == "minilm":
        return lambda texts: np.stack([question_features[t] for t in texts])
    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(fit_texts)
    return tfidf.transform


def router(kind: str, run_seed: int) -> dict[str, object]:
    """``shots`` questions per intent → a classifier with C picked on validation; its scores on val and test."""
    labelled = datasets.sample_per_class(train_pool, shots, seed=run_seed)
    y = to_known(labelled.y)
    features = featurizer(kind, labelled.x)
    X, X_val, X_test = features(labelled.x), features(val_part.x), features(test_part.x)
    in_val = val_y >= 0
    best = max(C_GRID, key=lambda C: LogisticRegression(C=C, max_iter=2000).fit(X, y).score(X_val[in_val], val_y[in_val]))
    model = LogisticRegression(C=best, max_iter=2000).fit(X, y)
    out = {"C": best}
    for name, X_part, y_part in (("val", X_val, val_y), ("test", X_test, test_y)):
        proba = model.predict_proba(X_part)
        out[f"{name}_confidence"] = proba.max(axis=1)
        out[f"{name}_correct"] = proba.argmax(axis=1) == y_part  # never right on an out-of-scope question
    return out


routers = {(kind, s): router(kind, s) for kind in ("minilm", "tfidf") for s in seeds}
print({kind: [routers[(kind, s)]["C"] for s in seeds] for kind in ("minilm", "tfidf")}, "(C picked on validation)")

# %% [markdown]
# First the plain routing accuracy on the in-scope test questions (every question answered), MiniLM against
# TF-IDF with the same few labels:

# %%
in_scope_acc = {kind: [float(routers[(kind, s)]["test_correct"][in_scope_test].mean()) for s in seeds]
                for kind in ("minilm", "tfidf")}
routing = compare(in_scope_acc["minilm"], in_scope_acc["tfidf"], "MiniLM + logistic regression",
                  "TF-IDF + logistic regression")
display(Markdown(claims.comparison("minilm_routes_better_than_tfidf", routing, "in-scope routing accuracy")
                 + f" (always the commonest intent: {constant_baseline(test_y[in_scope_test]):.3f})"))

# %% [markdown]
# **The hand-over threshold.** Answering only when the confidence reaches a threshold t trades *coverage*
# (the share of questions answered automatically) against the *accuracy of what is answered*. An
# out-of-scope question answered is an error. `applications.coverage_curve` lists, for every threshold,
# both numbers; `pick_threshold` takes the lowest threshold whose accuracy on the **validation** questions
# reaches `target_accuracy`. The test questions only report the result.

# %%
print(inspect.getsource(app.coverage_curve))
handover = []
for s in seeds:
    r = routers[("minilm", s)]
    t = app.pick_threshold(r["val_confidence"], r["val_correct"], target_accuracy)
    answered = r["test_confidence"] >= t
    handover.append({"seed": s, "threshold": t, "coverage": float(answered.mean()),
                     "answered_accuracy": float(r["test_correct"][answered].mean()) if answered.any() else 0.0,
                     "answer_all_accuracy": float(r["test_correct"].mean()),
                     "unknown_handed_over": float(1 - answered[~in_scope_test].mean()),
                     "known_handed_over": float(1 - answered[in_scope_test].mean())})
handover = pd.DataFrame(handover)
handover.round(3)

# %%
gated = compare(handover["answered_accuracy"], handover["answer_all_accuracy"], "answers above the threshold",
                "answering every question")
display(Markdown(claims.comparison("threshold_raises_accuracy", gated, "test accuracy of the automatic answers")))
display(Markdown(claims.claim(
    "unknown_go_to_a_person", handover["unknown_handed_over"].mean() > handover["known_handed_over"].mean(),
    f"The threshold hands {handover['unknown_handed_over'].mean():.0%} of the out-of-scope test questions to a "
    f"person but only {handover['known_handed_over'].mean():.0%} of the in-scope ones: low confidence does flag "
    f"questions the router was never taught.",
    f"The threshold hands {handover['unknown_handed_over'].mean():.0%} of the out-of-scope questions to a person "
    f"and {handover['known_handed_over'].mean():.0%} of the in-scope ones: confidence does NOT separate them here.")))
display(Markdown(claims.claim(
    "target_met_on_test", handover["answered_accuracy"].mean() >= target_accuracy,
    f"With the validation threshold, the automatic answers are {summarize(handover['answered_accuracy'])} accurate "
    f"on test (target {target_accuracy}) at a coverage of {summarize(handover['coverage'])}.",
    f"With the validation threshold the test accuracy of the automatic answers, "
    f"{summarize(handover['answered_accuracy'])}, falls short of the target {target_accuracy} (coverage "
    f"{summarize(handover['coverage'])}): the validation split is small, and a threshold read off it is noisy.")))

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.6))
for kind, style in (("minilm", "-"), ("tfidf", "--")):
    r = routers[(kind, seeds[0])]
    _, coverage, accuracy = app.coverage_curve(r["test_confidence"], r["test_correct"])
    ax.plot(coverage, accuracy, style, label={"minilm": "MiniLM", "tfidf": "TF-IDF"}[kind])
first = handover.iloc[0]
ax.scatter([first["coverage"]], [first["answered_accuracy"]], color="k", zorder=3, label="validation threshold")
ax.axhline(target_accuracy, color="grey", lw=0.8, ls=":")
ax.set(xlabel="coverage (share answered automatically)", ylabel="accuracy of the answered",
       title=f"Accuracy vs coverage on test questions (seed {seeds[0]}, {shots} shots)", ylim=(0, 1.02))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the curve from the right: answering everything gives the lowest accuracy (all the out-of-scope
# questions are wrong by definition); raising the threshold drops the least confident questions first.
# The router also gives a *retrieval* view for free: the stored question nearest to a new one (cosine
# similarity of the MiniLM vectors) is the answer a help desk would show.

# %%
labelled = datasets.sample_per_class(train_pool, shots, seed=seeds[0])
stored = np.stack([question_features[q] for q in labelled.x])
for question in test_part.x[:4]:
    j = int(app.nearest(question_features[question][None], stored, 1)[0, 0])
    print(f"{question[:60]!r:64} → nearest stored {labelled.x[j][:50]!r} ({intents.classes[labelled.y[j]]})")

# %% [markdown]
# ## 2. Sentiment monitoring on a stream from another domain
#
# A brand team watches the share of negative posts about it, window by window, and wants an alert when it
# jumps. The sentiment model was trained on labelled *film-critic snippets* (Rotten Tomatoes); the stream is
# *tweets*. That is a domain shift (lesson 05): the classifier's error rates on tweets differ from those
# on snippets, so the share of tweets it calls negative (*classify and count*, CC) is a biased estimate of
# the true share.
#
# **Correction.** If the classifier calls a truly negative text negative with rate TPR and a positive text
# negative with rate FPR, then the observed share is q = p·TPR + (1 − p)·FPR, so
# p = (q − FPR) / (TPR − FPR): the *adjusted count* (ACC). The rates must be measured somewhere: on the
# source validation split (free, but measured in the wrong domain), or on a small labelled sample of tweets
# (`tweet_labels` of them, half negative and half positive: the rates are per class, so the sample need not
# have the stream's shares). We also try lesson 03's EM prior estimate (`em_target_prior`), which assumes
# only the class shares changed.
#
# **A stream with a known truth.** We build it from real labelled tweets: for each window we draw
# `window` tweets with a scheduled negative share, a calm level with a few sudden rises that last some
# windows. The rises are the events the alert should catch. The validation stream (validation tweets) picks
# the alert threshold; test streams (test tweets, one per seed) score it.

# %%
rt, tweets = datasets.load_rotten_tomatoes(), datasets.load_tweets()
rt_train, rt_val = subset(rt.train, sizes["rt_train"]), subset(rt.val, sizes["rt_val"])
tweet_val, tweet_test = subset(tweets.val, sizes["tweet_val"]), subset(tweets.test, sizes["tweet_test"])
NEG = 0  # label 0 is "rotten" for the snippets and "negative" for the tweets
F_rt_train, F_rt_val, F_val, F_test = (encode(p.x) for p in (rt_train, rt_val, tweet_val, tweet_test))
sentiment = max((LogisticRegression(C=C, max_iter=2000).fit(F_rt_train, rt_train.y) for C in C_GRID),
                key=lambda m: m.score(F_rt_val, rt_val.y))  # C picked on the snippets' validation split
print(f"sentiment model (C = {sentiment.C}): accuracy {sentiment.score(F_rt_val, rt_val.y):.3f} on critic "
      f"snippets (constant {constant_baseline(rt_val.y):.3f}), {sentiment.score(F_test, tweet_test.y):.3f} on "
      f"tweets (constant {constant_baseline(tweet_test.y):.3f})")

# %%
proba_val, proba_test = sentiment.predict_proba(F_val), sentiment.predict_proba(F_test)
neg_val, neg_test = proba_val.argmax(1) == NEG, proba_test.argmax(1) == NEG
source_rates = app.tpr_fpr(rt_val.y, sentiment.predict(F_rt_val), positive=NEG)
source_prior = np.bincount(rt_train.y, minlength=2) / len(rt_train)
val_rows = datasets.Part(np.arange(len(tweet_val)), tweet_val.y)


def tweet_rates(run_seed: int) -> tuple[tuple[float, float], np.ndarray]:
    """(TPR, FPR) of 'negative' on a fresh labelled sample of validation tweets, and the rows it used."""
    rows = datasets.sample_per_class(val_rows, tweet_labels // 2, seed=run_seed).x
    return app.tpr_fpr(tweet_val.y[rows], np.where(neg_val[rows], NEG, 1 - NEG), positive=NEG), rows


target_rates, labelled_rows = tweet_rates(seeds[0])
stream_pool = np.setdiff1d(np.arange(len(tweet_val)), labelled_rows)  # the validation stream uses the rest
print(f"(TPR, FPR) of 'negative' on snippets {np.round(source_rates, 3)}, on {tweet_labels} labelled tweets "
      f"{np.round(target_rates, 3)} (seed {seeds[0]}; each seed labels its own sample)")


def schedule(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Negative share per window: a calm level with two or three rises of four windows; and the rise starts."""
    calm, rise = rng.uniform(0.15, 0.35), rng.uniform(0.25, 0.35)
    shares, events = np.full(n, calm), np.zeros(n, bool)
    starts = np.sort(rng.choice(np.arange(3, n - 4, 8), size=min(3, len(range(3, n - 4, 8))), replace=False))
    for s in starts:
        shares[s:s + 4] = calm + rise
        events[s] = True
    return shares, events


def monitor(labels: np.ndarray, proba: np.ndarray, rows: np.ndarray, run_seed: int,
            rates: tuple[float, float]) -> dict[str, np.ndarray]:
    """One stream: true share, events, and the share estimates of every method, per window."""
    rng = np.random.default_rng(run_seed)
    shares, events = schedule(n_windows, rng)
    windows = app.stream_windows(labels[rows], shares, window, seed=run_seed, positive=NEG)
    out = {"true": np.array([np.mean(labels[rows][w] == NEG) for w in windows]), "events": events}
    cc = np.array([np.mean(proba[rows][w].argmax(1) == NEG) for w in windows])
    out["classify and count"] = cc
    out["ACC, snippet rates"] = app.adjusted_count(cc, *source_rates)
    out["ACC, tweet rates"] = app.adjusted_count(cc, *rates)
    out["EM prior (03)"] = np.array([em_target_prior(proba[rows][w], source_prior)[NEG] for w in windows])
    return out


METHODS = ("classify and count", "ACC, snippet rates", "ACC, tweet rates", "EM prior (03)")
val_stream = monitor(tweet_val.y, proba_val, stream_pool, run_seed=10_000 + lesson.seed, rates=target_rates)
test_streams = [monitor(tweet_test.y, proba_test, np.arange(len(tweet_test)), run_seed=s, rates=tweet_rates(s)[0])
                for s in seeds]
share_error = pd.DataFrame({m: [np.abs(st[m] - st["true"]).mean() for st in test_streams] for m in METHODS},
                           index=pd.Index(seeds, name="seed"))
pooled_true = np.concatenate([st["true"] for st in test_streams])
share_slope = {m: float(np.polyfit(pooled_true, np.concatenate([st[m] for st in test_streams]), 1)[0]) for m in METHODS}
print("slope of the estimated share against the true share (1 is faithful):",
      {m: round(v, 3) for m, v in share_slope.items()})
print("mean |estimated − true| negative share per window (test streams):")
share_error.round(3)

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.4))
st = test_streams[0]
ax.plot(st["true"], "k-", lw=2, label="true share")
for m in ("classify and count", "ACC, tweet rates", "EM prior (03)"):
    ax.plot(st[m], ".-", lw=1, label=m)
for e in np.flatnonzero(st["events"]):
    ax.axvline(e, color="red", lw=0.6, ls=":")
ax.set(xlabel="window", ylabel="share of negative tweets", ylim=(0, 1),
       title=f"A test stream (seed {seeds[0]}): true and estimated negative share")
ax.legend(fontsize=7, ncol=2)
plt.show()

# %%
corrected = compare(-share_error["ACC, tweet rates"], -share_error["classify and count"], "ACC with tweet rates",
                    "classify and count")
display(Markdown(claims.claim(
    "domain_shift_biases_the_share", share_slope["classify and count"] < 0.8,
    f"Classify and count is biased by the domain shift: its estimate moves only {share_slope['classify and count']:.2f} "
    f"for each unit the true negative share moves (too high when few tweets are negative, too low when many are); "
    f"the adjusted count with tweet rates moves {share_slope['ACC, tweet rates']:.2f}.",
    f"Classify and count follows the true share with slope {share_slope['classify and count']:.2f}: this shift "
    f"barely distorts it.")))
display(Markdown(claims.comparison("acc_fixes_the_share", corrected, "negative-share error (negated, higher is better)")))
display(Markdown(claims.claim(
    "rates_must_come_from_the_target", share_error["ACC, tweet rates"].mean() < share_error["ACC, snippet rates"].mean(),
    f"Correcting with rates measured on snippets leaves an error of {summarize(share_error['ACC, snippet rates'])}; "
    f"with rates from {tweet_labels} labelled tweets, {summarize(share_error['ACC, tweet rates'])}: the correction "
    f"needs error rates measured in the new domain.",
    f"Rates measured on snippets ({summarize(share_error['ACC, snippet rates'])}) did as well as rates from "
    f"{tweet_labels} labelled tweets ({summarize(share_error['ACC, tweet rates'])}).")))
display(Markdown(claims.claim(
    "em_assumes_prior_shift_only", share_error["EM prior (03)"].mean() > share_error["ACC, tweet rates"].mean(),
    f"Lesson 03's EM prior estimate, which assumes that only the class shares changed, errs by "
    f"{summarize(share_error['EM prior (03)'])}: a domain shift breaks its assumption.",
    f"Lesson 03's EM prior estimate errs by {summarize(share_error['EM prior (03)'])}, no worse than ACC with "
    f"tweet rates.")))

# %% [markdown]
# **The alert.** `applications.jump_alerts` raises an alert at window t when the estimated share exceeds
# the mean of the three windows before it by more than a threshold. The threshold is picked on the
# validation stream (the best F1 of alert precision and recall there); an alert counts as right when a
# true rise started in that window or the one before (`tolerance=1`).

# %%
print(inspect.getsource(app.jump_alerts))
GRID = np.round(np.arange(0.02, 0.41, 0.01), 2)


def alert_f1(series: np.ndarray, events: np.ndarray, threshold: float) -> float:
    """F1 of alert precision and recall on one stream."""
    p, r = app.event_precision_recall(app.jump_alerts(series, threshold), events, tolerance=1)
    return 2 * p * r / (p + r) if p + r else 0.0


alerts = []
for m in ("classify and count", "ACC, tweet rates"):
    threshold = max(GRID, key=lambda t: alert_f1(val_stream[m], val_stream["events"], t))
    for s, st in zip(seeds, test_streams):
        p, r = app.event_precision_recall(app.jump_alerts(st[m], threshold), st["events"], tolerance=1)
        alerts.append({"estimate": m, "seed": s, "threshold": threshold, "precision": p, "recall": r})
alerts = pd.DataFrame(alerts)
alerts.round(3)

# %%
acc_alerts = alerts[alerts["estimate"] == "ACC, tweet rates"]
display(Markdown(claims.claim(
    "alert_catches_the_jumps", acc_alerts["recall"].mean() >= 0.6 and acc_alerts["precision"].mean() >= 0.6,
    f"On the test streams the alert on the corrected share caught {summarize(acc_alerts['recall'])} of the true "
    f"rises with a precision of {summarize(acc_alerts['precision'])}.",
    f"On the test streams the alert on the corrected share caught only {summarize(acc_alerts['recall'])} of the "
    f"rises, precision {summarize(acc_alerts['precision'])}.")))

# %% [markdown]
# Note what the correction changes and what it does not: a jump detector compares a window with the
# windows just before it, so a *constant* bias cancels; but classify and count also *shrinks* every jump by
# the factor TPR − FPR, which the adjusted count undoes. The level (how negative is the talk about us?) is
# where the correction matters most.
#
# ## 3. Recommendation and semantic search: articles like this one
#
# A news site recommends, under each article, the `k` most similar articles of its catalogue. Without
# click data, "similar" must come from the content. We embed each article with MiniLM (the first 128
# tokens: title and opening) and recommend its nearest neighbours by cosine similarity; the baseline is
# TF-IDF over the full text. BBC News articles carry a topic (business, entertainment, politics, sport,
# tech), so a measurable criterion is **same-topic precision@k**: the share of recommendations on the
# query article's topic. Catalogue = training articles, queries = test articles; each seed draws a
# different catalogue and query sample, so the comparison has a spread.
#
# **Cold start.** A new article arrives with only its *title* (the body is still being written, or it is
# a short item such as a video caption). TF-IDF can only match titles that share words; MiniLM was
# pretrained to place paraphrases together, so it can still find the topic.

# %%
bbc = datasets.load_bbc_news()
catalogue_all, queries_all = subset(bbc.train, sizes["bbc_catalogue"]), subset(bbc.test, sizes["bbc_queries"])
title = lambda text: text.split("\n", 1)[0].strip()  # noqa: E731 - the first line of a BBC file is its title
F_cat = {"full": encode(catalogue_all.x), "title": encode([title(t) for t in catalogue_all.x], max_length=32)}
F_query = {"full": encode(queries_all.x), "title": encode([title(t) for t in queries_all.x], max_length=32)}
print(f"catalogue {len(catalogue_all)} articles, queries {len(queries_all)}; e.g. title {title(queries_all.x[0])!r}")
print(f"always recommending articles of the commonest topic: precision@k {constant_baseline(queries_all.y):.3f}")

# %%
recs = []
for s in seeds:
    rng = np.random.default_rng(s)
    c_rows = rng.choice(len(catalogue_all), size=int(0.8 * len(catalogue_all)), replace=False)
    q_rows = rng.choice(len(queries_all), size=int(0.8 * len(queries_all)), replace=False)
    cat, qry = catalogue_all.take(c_rows), queries_all.take(q_rows)
    for view in ("full", "title"):
        to_text = (lambda t: t) if view == "full" else title
        tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit([to_text(t) for t in cat.x])
        scores = {"TF-IDF": app.precision_at_k(tfidf.transform([to_text(t) for t in qry.x]),
                                               tfidf.transform([to_text(t) for t in cat.x]), qry.y, cat.y, k),
                  "MiniLM": app.precision_at_k(F_query[view][q_rows], F_cat[view][c_rows], qry.y, cat.y, k)}
        recs += [{"seed": s, "view": view, "method": m, "precision_at_k": v} for m, v in scores.items()]
recs = pd.DataFrame(recs)
recs.pivot_table(index=["view", "method"], values="precision_at_k", aggfunc=["mean", "std"]).round(3)

# %%
def p_at_k(view: str, method: str) -> list[float]:
    """precision@k per seed, in seed order."""
    return recs[(recs["view"] == view) & (recs["method"] == method)].sort_values("seed")["precision_at_k"].tolist()


full_cmp = compare(p_at_k("full", "MiniLM"), p_at_k("full", "TF-IDF"), "MiniLM (first 128 tokens)", "TF-IDF (full text)")
cold_cmp = compare(p_at_k("title", "MiniLM"), p_at_k("title", "TF-IDF"), "MiniLM on titles", "TF-IDF on titles")
display(Markdown(claims.comparison("minilm_vs_tfidf_full_text", full_cmp, f"same-topic precision@{k}")))
display(Markdown(claims.comparison("cold_start_minilm_beats_tfidf", cold_cmp, f"same-topic precision@{k}")))
cold_drop = {m: float(np.mean(p_at_k("full", m)) - np.mean(p_at_k("title", m))) for m in ("MiniLM", "TF-IDF")}
display(Markdown(claims.claim(
    "transfer_carries_the_cold_start", cold_drop["MiniLM"] < cold_drop["TF-IDF"],
    f"Going from full text to titles only costs MiniLM {cold_drop['MiniLM']:.3f} of precision@{k} and TF-IDF "
    f"{cold_drop['TF-IDF']:.3f}: with little text, the pretrained encoder is what keeps recommendations on topic.",
    f"Going from full text to titles only costs MiniLM {cold_drop['MiniLM']:.3f} and TF-IDF "
    f"{cold_drop['TF-IDF']:.3f}: the pretrained encoder did NOT hold up better in the cold start.")))

# %%
fig, ax = plt.subplots(figsize=(5, 3.2))
means = recs.groupby(["view", "method"])["precision_at_k"].agg(["mean", "std"])
for i, method in enumerate(("TF-IDF", "MiniLM")):
    rows = means.xs(method, level="method").loc[["full", "title"]]
    ax.bar(np.arange(2) + 0.38 * i, rows["mean"], 0.36, yerr=rows["std"], label=method)
ax.axhline(constant_baseline(queries_all.y), color="grey", ls=":", lw=1, label="commonest topic")
ax.set_xticks(np.arange(2) + 0.19, ["full article", "title only (cold start)"])
ax.set(ylabel=f"same-topic precision@{k}", ylim=(0, 1.05),
       title=f"Article recommendations ({len(seeds)} catalogue draws)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 4. Exercises
#
# Each exercise's function is checked right below it against the course's reference answer; the student
# version of the notebook leaves the functions empty, and a check then says "not attempted".
#
# **Exercise 1 (warm-up).** Write the adjusted count of section 2: from the share `q` of texts the classifier
# calls negative, and its rates `tpr` and `fpr` measured in the new domain, return the estimated true share
# p, solving q = p·TPR + (1 − p)·FPR, and clipped to the range from 0 to 1 (a sampling accident can push the
# raw formula past either end). `q` may be one number or an array of window shares. This is how a model
# carried to another domain is corrected without retraining it: a few labels from the new domain measure its
# errors there.

# %%
# NBVAL_CHECK_OUTPUT
from transfer_utils.core.exercises import check_function, check_prediction, direction
from transfer_utils.solutions import lesson10 as solutions


def my_adjusted_count(q: float | np.ndarray, tpr: float, fpr: float) -> float | np.ndarray:
    ### BEGIN SOLUTION
    return np.clip((np.asarray(q, dtype=float) - fpr) / (tpr - fpr), 0.0, 1.0)
    ### END SOLUTION


acc_cases = [(0.48, 0.8, 0.3),  # a window where the classifier calls 48 of 100 tweets negative
             (np.array([0.2, 0.35, 0.9]), 0.8, 0.3),  # below FPR and above TPR: clipped
             (0.35, 1.0, 0.0),  # a perfect classifier needs no correction
             (np.array([0.3, 0.3]), 0.6, 0.2)]  # equal windows stay equal
check_function(my_adjusted_count, app.adjusted_count, acc_cases, name="exercise 1 (adjusted count)")

# %% [markdown]
# **Exercise 2 (apply).** For a confidence threshold t, return the coverage (the share of questions whose
# confidence is at least t) and the accuracy of those answered; when no question reaches t, return zero
# for both. This pair is the dial of section 1: a router built on transferred features is only useful once you
# know what each threshold buys. Mind ties: every question whose confidence equals t is answered.

# %%
# NBVAL_CHECK_OUTPUT
def my_coverage_and_accuracy(confidence: np.ndarray, correct: np.ndarray, t: float) -> tuple[float, float]:
    ### BEGIN SOLUTION
    answered = confidence >= t
    if not answered.any():
        return 0.0, 0.0
    return float(answered.mean()), float(correct[answered].mean())
    ### END SOLUTION


rng_ex = np.random.default_rng(0)
conf_ex = np.round(rng_ex.random(50), 2)  # rounded: several questions share a confidence
correct_ex = rng_ex.random(50) < conf_ex
threshold_cases = [(conf_ex, correct_ex, float(np.sort(conf_ex)[q])) for q in (5, 25, 45)]
threshold_cases += [(conf_ex, correct_ex, float(conf_ex.min())),  # answer everything
                    (conf_ex, correct_ex, 1.5),  # answer nothing
                    (np.array([0.7, 0.7, 0.7]), np.array([True, False, True]), 0.7)]  # all tied at t
check_function(my_coverage_and_accuracy, solutions.coverage_and_accuracy, threshold_cases,
               name="exercise 2 (coverage and accuracy at a threshold)")

# %% [markdown]
# **Exercise 3 (apply).** Write precision@k from a matrix of similarities (queries × catalogue), the
# catalogue's labels and the queries' labels: for each query take the k most similar catalogue items, count
# those with the query's label, and average the shares over the queries. It is the yardstick of section 3,
# where it decides whether pretrained sentence vectors recommend better than word counts.

# %%
# NBVAL_CHECK_OUTPUT
def my_precision_at_k(similarity: np.ndarray, catalogue_labels: np.ndarray, query_labels: np.ndarray,
                      k: int) -> float:
    ### BEGIN SOLUTION
    top = np.argsort(-similarity, axis=1)[:, :k]
    return float(np.mean(catalogue_labels[top] == query_labels[:, None]))
    ### END SOLUTION


rng_ex = np.random.default_rng(1)
vectors_c, vectors_q = normalize(rng_ex.normal(size=(40, 6))), normalize(rng_ex.normal(size=(8, 6)))
labels_c, labels_q = rng_ex.integers(0, 3, 40), rng_ex.integers(0, 3, 8)
similarity_ex = vectors_q @ vectors_c.T
recommend_cases = [(similarity_ex, labels_c, labels_q, 5),
                   (similarity_ex, labels_c, labels_q, 1),  # only the nearest item
                   (similarity_ex, labels_c, labels_q, 40),  # the whole catalogue: the label shares
                   (similarity_ex[:1], labels_c, labels_q[:1], 3),  # a single query
                   (similarity_ex, np.zeros(40, int), np.zeros(8, int), 5)]  # one topic only
check_function(my_precision_at_k, solutions.precision_at_k_from_similarity, recommend_cases,
               name="exercise 3 (precision@k)")

# %% [markdown]
# **Exercise 4 (experiment).** How many labels is the pretrained encoder worth? Section 1 gave MiniLM and
# TF-IDF the same `shots` questions per intent. The cell below trains the MiniLM router again with only two
# labelled questions per intent (C still picked on validation), on the same seeds. Predict before you run:
# will its in-scope test accuracy be "higher", "lower" or "about the same" as that of TF-IDF with all `shots`
# questions per intent (means over the seeds)? Put your prediction in `my_prediction`, then run the cell.

# %%
def my_prediction() -> str:
    ### BEGIN SOLUTION
    return "higher"
    ### END SOLUTION


# %%
def minilm_routing_accuracy(n_shots: int, run_seed: int) -> float:
    """In-scope test accuracy of the MiniLM router trained on ``n_shots`` questions per intent."""
    labelled = datasets.sample_per_class(train_pool, n_shots, seed=run_seed)
    features, y = featurizer("minilm", labelled.x), to_known(labelled.y)
    X, X_val, X_test = features(labelled.x), features(val_part.x), features(test_part.x)
    in_val = val_y >= 0
    best = max(C_GRID, key=lambda C: LogisticRegression(C=C, max_iter=2000).fit(X, y).score(X_val[in_val], val_y[in_val]))
    model = LogisticRegression(C=best, max_iter=2000).fit(X, y)
    return float(np.mean(model.predict(X_test[in_scope_test]) == test_y[in_scope_test]))


before = float(np.mean(in_scope_acc["tfidf"]))
after = float(np.mean([minilm_routing_accuracy(2, s) for s in seeds]))
outcome = direction(before, after, margin=0.03)
check_prediction(my_prediction, outcome, name="exercise 4 (two shots on pretrained features)",
                 choices=["higher", "lower", "about the same"],
                 evidence=f"TF-IDF with {shots} questions per intent {before:.3f} → MiniLM with 2 per intent "
                          f"{after:.3f} (MiniLM with {shots}: {np.mean(in_scope_acc['minilm']):.3f}; always the "
                          f"commonest intent {constant_baseline(test_y[in_scope_test]):.3f}; {len(seeds)} seeds)")

# %% [markdown]
# ## 5. Results

# %%
seed0 = handover.iloc[0]
lesson.save_metrics({
    "n_seeds": len(seeds),
    "shots": shots,
    "routing_acc_minilm": spread(in_scope_acc["minilm"])[0],
    "routing_acc_tfidf": spread(in_scope_acc["tfidf"])[0],
    "routing_constant_acc": constant_baseline(test_y[in_scope_test]),
    "handover_coverage": float(handover["coverage"].mean()),
    "handover_answered_acc": float(handover["answered_accuracy"].mean()),
    "answer_all_acc": float(handover["answer_all_accuracy"].mean()),
    "unknown_handed_over": float(handover["unknown_handed_over"].mean()),
    "known_handed_over": float(handover["known_handed_over"].mean()),
    "tweet_acc": float(sentiment.score(F_test, tweet_test.y)),
    "tweet_constant_acc": constant_baseline(tweet_test.y),
    "share_mae_cc": float(share_error["classify and count"].mean()),
    "share_mae_acc_source": float(share_error["ACC, snippet rates"].mean()),
    "share_mae_acc_target": float(share_error["ACC, tweet rates"].mean()),
    "share_mae_em": float(share_error["EM prior (03)"].mean()),
    "share_slope_cc": share_slope["classify and count"],
    "share_slope_acc_target": share_slope["ACC, tweet rates"],
    "alert_precision": float(acc_alerts["precision"].mean()),
    "alert_recall": float(acc_alerts["recall"].mean()),
    "p_at_k_minilm_full": float(np.mean(p_at_k("full", "MiniLM"))),
    "p_at_k_tfidf_full": float(np.mean(p_at_k("full", "TF-IDF"))),
    "p_at_k_minilm_title": float(np.mean(p_at_k("title", "MiniLM"))),
    "p_at_k_tfidf_title": float(np.mean(p_at_k("title", "TF-IDF"))),
    "p_at_k_constant": constant_baseline(queries_all.y),
    "k": k,
    **routing.as_metrics("routing"),
    **corrected.as_metrics("share_correction"),
    **cold_cmp.as_metrics("cold_start"),
    **claims.as_metrics(),
})
# customer service: the router leaves the constant answer far behind, and the threshold buys accuracy
assert spread(in_scope_acc["minilm"])[0] > constant_baseline(test_y[in_scope_test]) + 0.2
assert handover["answered_accuracy"].mean() > handover["answer_all_accuracy"].mean() + lesson.pick(smoke=0.0, default=0.05)
assert handover["unknown_handed_over"].mean() > handover["known_handed_over"].mean()
# monitoring: the correction with tweet rates beats classify and count; the alert finds the rises
assert share_error["ACC, tweet rates"].mean() < share_error["ACC, snippet rates"].mean()
assert acc_alerts["recall"].mean() >= lesson.pick(smoke=0.3, default=0.6)
assert acc_alerts["precision"].mean() >= lesson.pick(smoke=0.3, default=0.6)
# recommendation: both beat the commonest topic; on titles MiniLM beats TF-IDF
assert min(np.mean(p_at_k("full", "MiniLM")), np.mean(p_at_k("full", "TF-IDF"))) > constant_baseline(queries_all.y) + 0.3
assert np.mean(p_at_k("title", "MiniLM")) > np.mean(p_at_k("title", "TF-IDF")) + lesson.pick(smoke=0.0, default=0.05)
if lesson.profile != "smoke":
    assert routing.winner == routing.name_a, routing.sentence()
    assert share_error["ACC, tweet rates"].mean() < share_error["classify and count"].mean(), share_error.mean()
    assert cold_cmp.winner == cold_cmp.name_a, cold_cmp.sentence()

# %% [markdown]
# ## Summary and what next
#
# * **Customer service.** Frozen sentence features make a router from a handful of questions per intent;
#   its confidence, with a threshold read off a validation split, decides what is answered automatically and
#   what goes to a person, and the accuracy / coverage curve shows the price of each choice. Out-of-scope
#   questions are the reason the threshold exists.
# * **Sentiment monitoring.** A model carried to a new domain counts wrongly; measuring its error rates on a
#   small labelled sample from the new domain and inverting them (adjusted classify and count) repairs the
#   share; an alert compares each window with the ones before it, and its precision and recall can only be
#   measured on a stream whose truth is known.
# * **Recommendation.** Nearest neighbours in embedding space recommend on-topic articles; precision@k
#   against TF-IDF says when the pretrained encoder is needed: where text is short, as in a cold start.

# %%
display(Markdown(claims.markdown("What this run showed")))

# %% [markdown]
# **Next:** [11 · Parameter-efficient fine-tuning](11_parameter_efficient_fine_tuning.ipynb) adapts the
# encoder itself, training a few percent of its weights, when frozen features are not enough.
