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
# # 03 · Feature-based transfer: pretrained features and domain alignment
#
# **Goals.** By the end of this notebook you will
# 1. use a frozen pretrained network as a feature extractor with a linear probe, for text (MiniLM) and
#    for images (EfficientNet-Lite0 trained on ImageNet);
# 2. measure the distance between two domains with the maximum mean discrepancy (MMD) and see it in
#    PCA and t-SNE pictures;
# 3. align domains three ways (CORAL, subspace alignment, TCA) and measure what each does to the MMD
#    and to the target accuracy on three real shifts, over several seeds: film-critic snippets → tweets,
#    MNIST → scikit-learn digits, and MNIST → MNIST blended with photos (a shift of style, where
#    alignment can help);
# 4. tell a shift alignment can address from one it cannot (a change of class shares), and correct the
#    latter where it can be corrected.
#
# **Prerequisites.** Lesson 00 (frozen sentence features), lesson 02 (covariate shift, weights).
#
# **Time.** for you ≈ 40 min reading + 45 min exercises; for the machine, smoke ≈ 0.3 min · default ≈ 0.9 min on a 2-core CPU (measured by `bench/lesson_times.py`).

# %%
import inspect
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

# %% tags=["parameters"]
seed: int = 0  # first seed; seed i draws its own subsets of each domain's pool
device: str = "auto"  # where the frozen encoders run: "auto", "cpu", "cuda" or "mps"
profile: str = os.environ.get("COURSE_PROFILE", "default")  # "smoke" (CI, ~1 min), "default" (laptop), "full"
metrics_path: str = ""  # where the metrics JSON goes; "" means data/runs/<profile>/03_feature_based.metrics.json
coral_reg: float = 0.5  # CORAL's covariance shrinkage towards a scaled identity (0: none, 1: full)
n_subspace: int = 50  # dimensions kept by subspace alignment and TCA
tca_mu: float = 0.1  # weight of TCA's domain-distance term (skada's convention: larger aligns more)
image_size: int = 64  # pixels the digits are resized to for EfficientNet-Lite0
n_seeds: int = 0  # subsets (seeds) each comparison is measured on; 0 means the profile's choice (3, 3, 5)

# %%
from transfer_utils.data import datasets
from transfer_utils.core import plots
from transfer_utils.core.evidence import Claims, compare, constant_baseline, summarize
from transfer_utils.models import embeddings
from transfer_utils.data.digit_shifts import blend_with_photos, mnist_as_optdigits
from transfer_utils.models.embeddings import image_features
from transfer_utils.methods.feature import CORAL, TCA, SubspaceAlignment, median_gamma, mmd2
from transfer_utils.methods.instance import adjust_to_prior, em_target_prior
from transfer_utils.core.runtime import check_float, check_int, check_seed, start_lesson

lesson = start_lesson("03_feature_based", seed=seed, device=device, profile=profile, metrics_path=metrics_path)
check_float("coral_reg", coral_reg, low=0.0, high=1.0)
check_int("n_subspace", n_subspace, low=2, high=300)  # at most the rows of the smallest smoke sample (300)
check_float("tca_mu", tca_mu, low=0.0, high=1e6)
check_int("image_size", image_size, low=32, high=224)
check_int("n_seeds", n_seeds, low=0, high=20)
plots.setup()
sizes = lesson.pick(smoke={"text_source": 300, "text_target": 300, "text_test": 300, "mnist": 400, "digits": 300,
                           "digits_test": 300, "blend": 400, "blend_test": 300, "tca_rows": 200, "mmd_rows": 200,
                           "tsne_rows": 120, "n_seeds": 3},
                    default={"text_source": 2000, "text_target": 2000, "text_test": 1000, "mnist": 1500,
                             "digits": None, "digits_test": None, "blend": 1200, "blend_test": 600, "tca_rows": 500,
                             "mmd_rows": 500, "tsne_rows": 300, "n_seeds": 3},
                    full={"text_source": 4000, "text_target": 4000, "text_test": 2000, "mnist": 3000,
                          "digits": None, "digits_test": None, "blend": 1700, "blend_test": 1000, "tca_rows": 800,
                          "mmd_rows": 800, "tsne_rows": 500, "n_seeds": 5})
sizes["n_seeds"] = n_seeds or sizes["n_seeds"]
check_seed(seed, sizes["n_seeds"])
seeds = [lesson.seed + i for i in range(sizes["n_seeds"])]
print(lesson, sizes, "seeds:", seeds)
claims = Claims()  # the sentences the summary states, decided by this run's numbers
findings = Claims()  # the sections' own readings of their numbers (also recorded in the metrics file)

# %% [markdown]
# ## 1. The recipe: frozen features, a linear probe, and a shift
#
# *Feature-based* transfer reuses a representation. A network pretrained on a large source of data
# (MiniLM on a billion sentence pairs, EfficientNet-Lite0 on ImageNet's photos) turns each input into
# a vector; we keep the network frozen and train only a linear model on top (a *linear probe*). That
# worked in lesson 00. Here the labelled data and the data we must predict come from **different
# domains**, and we ask whether we can also *align* the two domains' features:
#
# * **text**: Rotten Tomatoes critic snippets (labelled: fresh / rotten) → tweets (positive / negative);
# * **images**: MNIST digits → scikit-learn's 8×8 digits;
# * **images**: MNIST digits (grey) → the same kind of digits blended with patches of colour photos
#   (as in the MNIST-M benchmark): the digit shapes stay, the *style* changes completely.
#
# Each shift gets five numbers: the source-only probe, the same probe after CORAL, subspace alignment
# and TCA, plus a probe trained on the *target's* labels (the "oracle", how far one could go). Each
# domain's features are computed once for a pool of examples; every seed then draws its own four fifths of the
# source and target pools, so that each comparison is made several times, paired by seed.

# %%
def probe():
    """The linear probe: standardised features, then logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))


snippets, tweets = datasets.load_rotten_tomatoes(), datasets.load_tweets()
text_source = datasets.sample_n(snippets.train, sizes["text_source"], lesson.seed)
text_target = datasets.sample_n(tweets.train, sizes["text_target"], lesson.seed)  # labels: oracle only
text_test = datasets.sample_n(tweets.test, sizes["text_test"], lesson.seed)
print(f"snippet example: {text_source.x[0]!r}\ntweet example:   {text_target.x[0]!r}")
print(f"positive share: snippets {text_source.y.mean():.2f}, tweets {text_target.y.mean():.2f}")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    F_text = {name: embeddings.encode_texts(part.x, device=lesson.device)
              for name, part in [("source", text_source), ("target", text_target), ("test", text_test)]}
Y_text = {"source": text_source.y, "target": text_target.y, "test": text_test.y}
print({name: f.shape for name, f in F_text.items()})

# %% [markdown]
# For the digits, the preprocessing *is* part of the lesson. scikit-learn's digits are the UCI
# "optdigits": each handwritten digit was binarised, scaled to fit a 32×32 box, and its on-pixels were
# counted in 4×4 blocks, giving 8×8 values 0-16. Putting MNIST through the same steps
# (`transfer_utils.data.digit_shifts.mnist_as_optdigits`) leaves a shift of writers and scanners, not of
# an arbitrary resize (a naive 28→8 resize would add a shift of its own). Both domains then go through the same
# frozen EfficientNet-Lite0 at `image_size` pixels.

# %%
mnist, digits = datasets.load_mnist_5k(), datasets.load_sklearn_digits()
mnist_part = datasets.sample_n(mnist.train, sizes["mnist"], lesson.seed)
digits_part = digits.train if sizes["digits"] is None else datasets.sample_n(digits.train, sizes["digits"], lesson.seed)
to_uint8 = lambda counts: np.round(counts.astype(np.float32) * 255 / 16).astype(np.uint8)  # noqa: E731
digits_test = digits.test if sizes["digits_test"] is None else datasets.sample_n(digits.test, sizes["digits_test"],
                                                                                  lesson.seed)
images = {"source": to_uint8(mnist_as_optdigits(mnist_part.x)), "target": to_uint8(digits_part.x),
          "test": to_uint8(digits_test.x)}
Y_image = {"source": mnist_part.y, "target": digits_part.y, "test": digits_test.y}
plots.image_rows({"MNIST\n(optdigits)": images["source"], "sklearn\ndigits": images["target"]}, cmap="gray_r",
                 title="Source and target digits, both 8×8 counts 0-16")
plt.show()
F_image = {name: image_features(x, size=image_size, device=lesson.device) for name, x in images.items()}
print({name: f.shape for name, f in F_image.items()})

# %% [markdown]
# The third shift keeps MNIST's digits but changes their look: each target digit is drawn over a random
# patch of a colour photo (`blend_with_photos`; where the digit has ink, the photo's colours are
# inverted). Source, target and test digits are disjoint MNIST rows.

# %%
n_blend = sizes["blend"]
blend_source = mnist.train.take(np.arange(n_blend))
blend_target = mnist.train.take(np.arange(n_blend, 2 * n_blend))  # its labels: oracle only
blend_test = mnist.test.take(np.arange(sizes["blend_test"]))
grey_rgb = lambda x: np.repeat(x[..., None], 3, axis=-1)  # noqa: E731
blend_images = {"source": grey_rgb(blend_source.x), "target": blend_with_photos(blend_target.x, seed=1),
                "test": blend_with_photos(blend_test.x, seed=2)}
Y_blend = {"source": blend_source.y, "target": blend_target.y, "test": blend_test.y}
plots.image_rows({"MNIST": blend_images["source"], "blended": blend_images["target"]},
                 title="Source and target of the style shift")
plt.show()
F_blend = {name: image_features(x, size=image_size, device=lesson.device) for name, x in blend_images.items()}
print({name: f.shape for name, f in F_blend.items()})

# %% [markdown]
# ## 2. How far apart are the domains? MMD and pictures
#
# The **maximum mean discrepancy** compares the *average* of the two samples after mapping each point
# into the feature space of a kernel k:
#
# MMD² = mean k(x, x') + mean k(y, y') − 2 mean k(x, y),
#
# zero when the samples are identical, large when they live in different places. With a Gaussian
# kernel it sees every difference of the distributions, not just the means. The kernel width here is
# the median heuristic (1 / median squared distance), fixed from the unaligned features so that
# "before" and "after" are measured with the same ruler.

# %%
def mmd_rows(F: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The first ``mmd_rows`` source and target rows: MMD is quadratic in the sample size."""
    return F["source"][: sizes["mmd_rows"]], F["target"][: sizes["mmd_rows"]]


gammas, mmd_noise = {}, {}
for shift, F in [("text", F_text), ("image", F_image), ("blend", F_blend)]:
    s, t = mmd_rows(F)
    gammas[shift] = median_gamma(s, t)
    half = len(s) // 2
    mmd_noise[shift] = (mmd2(s, t, gammas[shift]), mmd2(s[:half], s[half:], gammas[shift]))
    print(f"{shift}: MMD² source vs target {mmd_noise[shift][0]:.4f} | two halves of the source {mmd_noise[shift][1]:.4f}")

# %% [markdown]
# The second number is the MMD between two halves of the *same* domain: what sampling noise alone
# gives.

# %%
display(Markdown(" ".join(
    findings.claim(f"{shift}_mmd_above_noise", between > 2 * noise,
                   f"**{shift}**: the shift's MMD² ({between:.4f}) is {between / max(noise, 1e-12):.0f} times the "
                   f"noise level of two halves of the source ({noise:.4f}).",
                   f"**{shift}**: the shift's MMD² ({between:.4f}) is not even twice the noise level of two halves "
                   f"of the source ({noise:.4f}): on this sample the domains look alike.")
    for shift, (between, noise) in mmd_noise.items())))

# %% [markdown]
# A picture: PCA fitted on both domains together, source and target coloured.

# %%
def pca_panel(ax, source: np.ndarray, target: np.ndarray, title: str) -> None:
    """Source and target rows on the first two principal axes of both together."""
    pca = PCA(2, random_state=0).fit(np.vstack([source, target]))
    for rows, name in [(source, "source"), (target, "target")]:
        xy = pca.transform(rows[:500])
        ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.5, label=name)
    ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
    ax.legend(fontsize="small", markerscale=3)


aligned_text = CORAL(coral_reg).fit(F_text["source"], F_text["target"]).transform(F_text["source"])
aligned_image = CORAL(coral_reg).fit(F_image["source"], F_image["target"]).transform(F_image["source"])
aligned_blend = CORAL(coral_reg).fit(F_blend["source"], F_blend["target"]).transform(F_blend["source"])
fig, axes = plt.subplots(3, 2, figsize=(9, 9.5))
pca_panel(axes[0, 0], F_text["source"], F_text["target"], "Text features: snippets vs tweets")
pca_panel(axes[0, 1], aligned_text, F_text["target"], "Text, after CORAL")
pca_panel(axes[1, 0], F_image["source"], F_image["target"], "Image features: MNIST vs sklearn digits")
pca_panel(axes[1, 1], aligned_image, F_image["target"], "Images, after CORAL")
pca_panel(axes[2, 0], F_blend["source"], F_blend["target"], "Image features: MNIST vs photo-blended")
pca_panel(axes[2, 1], aligned_blend, F_blend["target"], "Blended, after CORAL")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Three ways to align
#
# * **CORAL** (correlation alignment) matches second-order statistics: whiten the source features with
#   its covariance C_s^{-1/2}, re-colour them with the target's C_t^{1/2}, and move them to the target
#   mean. Train the probe on the re-coloured source; apply it to target features as they are. Three
#   lines of linear algebra:

# %%
print(inspect.getsource(CORAL.fit))
print(inspect.getsource(CORAL.transform))

# %% [markdown]
# * **Subspace alignment** keeps the top-d principal directions of each domain (P_s, P_t) and learns
#   the d×d matrix M = P_sᵀP_t that rotates the source basis onto the target's: source rows become
#   (x − μ_s)P_sM, target rows (x − μ_t)P_t.
# * **TCA** (transfer component analysis) works in a kernel space: among all projections of the
#   pooled data it picks the d that keep the most variance while bringing the two domains' means
#   close, a generalised eigenproblem KHK w = λ(I + μ·KLK) w (K the kernel matrix, H centres the
#   data, L measures the MMD). It is quadratic in memory and cubic in time in the number of rows, so it
#   is fitted on a subsample and then applied to every row through the kernel.
#
# All three are in `transfer_utils.methods.feature`, tested against skada's `CORAL`,
# `SubspaceAlignment` and `TransferComponentAnalysis` (`tests/test_methods_feature.py`).

# %%
def draw(F: dict[str, np.ndarray], Y: dict[str, np.ndarray], run_seed: int,
         keep: float = 0.8) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One seed's subsets: ``keep`` of the source and of the target pool; the test rows stay the same."""
    rng = np.random.default_rng(run_seed)
    F_run, Y_run = {"test": F["test"]}, {"test": Y["test"]}
    for part in ("source", "target"):
        rows = rng.choice(len(F[part]), int(keep * len(F[part])), replace=False)
        F_run[part], Y_run[part] = F[part][rows], Y[part][rows]
    return F_run, Y_run


def class_direction_cosine(Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray, yt: np.ndarray) -> float:
    """Cosine between the source's and the target's (mean of class 1 − mean of class 0) directions."""
    ds, dt = Xs[ys == 1].mean(0) - Xs[ys == 0].mean(0), Xt[yt == 1].mean(0) - Xt[yt == 0].mean(0)
    return float(ds @ dt / (np.linalg.norm(ds) * np.linalg.norm(dt)))


def evaluate_shift(F: dict[str, np.ndarray], Y: dict[str, np.ndarray], gamma: float) -> dict[str, float]:
    """Target-test accuracy of the probe with each alignment, the oracle, and the MMD before and after CORAL."""
    Fs, Ft, Ftest = F["source"], F["target"], F["test"]
    alone = probe().fit(Fs, Y["source"])
    row = {"source only": alone.score(Ftest, Y["test"]),
           "oracle (target labels)": probe().fit(Ft, Y["target"]).score(Ftest, Y["test"]),
           "constant predictor": constant_baseline(Y["test"], "accuracy")}  # always the test's commonest class
    cor = CORAL(coral_reg).fit(Fs, Ft)
    coral_probe = probe().fit(cor.transform(Fs), Y["source"])
    row["CORAL"] = coral_probe.score(Ftest, Y["test"])
    sa = SubspaceAlignment(n_subspace).fit(Fs, Ft)
    sa_probe = probe().fit(sa.transform(Fs), Y["source"])
    row["subspace alignment"] = sa_probe.score(sa.transform(Ftest, "target"), Y["test"])
    if len(np.unique(Y["test"])) == 2:
        # Diagnosis for a two-class shift (uses target labels only to explain, never to choose): how often each
        # probe answers "positive" on the target, and whether the source's class direction still points along
        # the target's after alignment.
        row["true positive share (test)"] = float(np.mean(Y["test"]))
        for name, model, test_rows in [("source only", alone, Ftest), ("CORAL", coral_probe, Ftest),
                                       ("subspace alignment", sa_probe, sa.transform(Ftest, "target"))]:
            row[f"predicted positive share, {name}"] = float(np.mean(model.predict(test_rows)))
        row["class-direction cosine, no alignment"] = class_direction_cosine(Fs, Y["source"], Ft, Y["target"])
        row["class-direction cosine, CORAL"] = class_direction_cosine(cor.transform(Fs), Y["source"], Ft, Y["target"])
        row["class-direction cosine, subspace alignment"] = class_direction_cosine(
            sa.transform(Fs), Y["source"], sa.transform(Ft, "target"), Y["target"])
    n = sizes["tca_rows"]
    tca_model = TCA(n_subspace, median_gamma(Fs[:n], Ft[:n]), tca_mu).fit(Fs[:n], Ft[:n])
    row["TCA"] = probe().fit(tca_model.transform(Fs), Y["source"]).score(tca_model.transform(Ftest), Y["test"])
    s, t = mmd_rows(F)
    row["MMD² before"] = mmd2(s, t, gamma)
    row["MMD² after CORAL"] = mmd2(cor.transform(s), t, gamma)
    # TCA's own space: the same components without (mu = 0) and with the domain-distance term.
    plain = TCA(n_subspace, tca_model.gamma_, 0.0).fit(Fs[:n], Ft[:n])
    z_plain, z_tca = plain.embedding_, tca_model.embedding_
    row["MMD² TCA space, mu = 0"] = mmd2(z_plain[:n], z_plain[n:], median_gamma(z_plain[:n], z_plain[n:]))
    row["MMD² TCA space, mu > 0"] = mmd2(z_tca[:n], z_tca[n:], median_gamma(z_tca[:n], z_tca[n:]))
    return row


shift_data = {"text: snippets → tweets": ("text", F_text, Y_text),
              "image: MNIST → sklearn digits": ("image", F_image, Y_image),
              "image: MNIST → photo-blended MNIST": ("blend", F_blend, Y_blend)}
shift_keys = {column: key for column, (key, _, _) in shift_data.items()}
runs = {column: pd.DataFrame([evaluate_shift(*draw(F, Y, run_seed), gammas[key])
                              for run_seed in tqdm(seeds, desc=key)])
        for column, (key, F, Y) in shift_data.items()}
results = pd.DataFrame({column: r.mean() for column, r in runs.items()})  # seed means
accuracy_rows = ["source only", "CORAL", "subspace alignment", "TCA", "oracle (target labels)", "constant predictor"]
pd.DataFrame({column: {row: summarize(r[row]) for row in accuracy_rows} for column, r in runs.items()})

# %% [markdown]
# Each cell is the mean ± standard deviation over the seeds of the target-test accuracy. The MMD rows
# (seed means):

# %%
results.loc[["MMD² before", "MMD² after CORAL", "MMD² TCA space, mu = 0", "MMD² TCA space, mu > 0"]].round(4)

# %%
alignments = {"CORAL": "coral", "subspace alignment": "sa", "TCA": "tca"}
reading = []
for column, shift in shift_keys.items():
    r = results[column]
    const, alone, oracle = r["constant predictor"], r["source only"], r["oracle (target labels)"]
    reading.append(claims.claim(
        f"{shift}_mmd_drops_after_coral", r["MMD² after CORAL"] < r["MMD² before"],
        f"**{column}**: CORAL lowers the MMD² from {r['MMD² before']:.4f} to {r['MMD² after CORAL']:.4f}: the "
        f"features look more alike.",
        f"**{column}**: CORAL does not lower the MMD² ({r['MMD² before']:.4f} → {r['MMD² after CORAL']:.4f})."))
    # the constant predictor, paired by seed: does the source-only probe transfer more than a constant answer?
    reading.append(f"**{column}** (a probe trained on target labels scores {oracle:.3f}): " + claims.comparison(
        f"{shift}_source_only_vs_constant", compare(runs[column]["source only"], runs[column]["constant predictor"],
                                                    "the source-only probe", "the constant predictor")))
    below = [name for name in alignments if r[name] <= const]
    scores = ", ".join(f"{name} {r[name]:.3f}" for name in alignments)
    reading.append(claims.claim(
        f"{shift}_alignments_above_constant", not below,
        f"**{column}**: every alignment stays above the constant predictor ({const:.3f}): {scores}.",
        f"**{column}**: {' and '.join(below)} {'does' if len(below) == 1 else 'do'} **not beat the constant "
        f"predictor** ({const:.3f}): no better than always answering the commonest class ({scores})."))
    for name, key in alignments.items():
        reading.append(f"**{column}**: " + claims.comparison(
            f"{shift}_{key}_vs_source_only", compare(runs[column][name], runs[column]["source only"], name,
                                                     "the source-only probe")))
display(Markdown(f"**This run** (target-test accuracy; {len(seeds)} seeds per shift, paired by seed):\n\n"
                 + "\n".join(f"- {line}" for line in reading)))

# %% [markdown]
# **Diagnosis on the text shift.** Two numbers explain what an alignment did to a two-class probe: how
# often it answers "positive" on the tweets (the truth is printed beside it), and the cosine between the
# source's class direction (mean positive minus mean negative) and the target's, in the space the probe
# works in. Alignment that helps keeps that cosine high; one that rotates or flips the sentiment
# direction sends the probe's decisions elsewhere, whatever it does to the MMD.

# %%
text_runs = runs["text: snippets → tweets"]
diagnosis_rows = ["true positive share (test)", "predicted positive share, source only", "predicted positive share, CORAL",
                  "predicted positive share, subspace alignment", "class-direction cosine, no alignment",
                  "class-direction cosine, CORAL", "class-direction cosine, subspace alignment"]
display(pd.DataFrame({"snippets → tweets": {row: summarize(text_runs[row]) for row in diagnosis_rows}}))
d = text_runs.mean()
diagnosis_lines = []
truth, alone_share = d["true positive share (test)"], d["predicted positive share, source only"]
for name in ("CORAL", "subspace alignment"):
    cos_before, cos_after = d["class-direction cosine, no alignment"], d[f"class-direction cosine, {name}"]
    share = d[f"predicted positive share, {name}"]
    diagnosis_lines.append(findings.claim(
        f"text_{alignments[name]}_overpredicts_positive", share > alone_share + 0.05,
        f"After {name} the probe answers positive for {share:.0%} of the tweets, against {alone_share:.0%} for the "
        f"source-only probe and a true {truth:.0%}; the class directions agree as well or better (cosine "
        f"{cos_before:.2f} → {cos_after:.2f}). So the errors are not a rotated sentiment axis but a moved threshold: "
        f"the target cloud, mostly negative, was matched to the source's statistics, mostly positive, and "
        f"negative tweets landed on the positive side.",
        f"After {name} the probe answers positive for {share:.0%} of the tweets, against {alone_share:.0%} for the "
        f"source-only probe and a true {truth:.0%} (class-direction cosine {cos_before:.2f} → {cos_after:.2f}): "
        f"alignment did not move the decisions towards 'positive'."))
display(Markdown("\n".join(f"- {line}" for line in diagnosis_lines)))

# %% [markdown]
# How to read these numbers, rather than the textbook's hopes:
#
# * CORAL is built to make the *features* look alike, and the MMD measures exactly that. (TCA's two MMD
#   rows are measured in its own components, with and without its distance term, each with its own
#   median kernel width: compare them with each other, not with the CORAL rows);
# * **accuracy is another matter.** A lower MMD only helps if the alignment moves each class of the
#   source onto the same class of the target. CORAL and subspace alignment align the whole cloud,
#   blind to the labels: when the two domains differ in *which directions carry the label*, or in
#   their class shares, matching the clouds can move source examples of one class onto target examples
#   of another, and the probe gets worse (the diagnosis above measures exactly this). When the style
#   changes but the label lives in directions both domains share, as with the photo-blended digits,
#   aligning the subspaces can recover part of what the shift cost: read the comparison lines above;
# * in the pictures, after CORAL the clouds overlap, yet overlap of clouds is not overlap of classes.
#
# A t-SNE picture of the image features coloured by digit shows what alignment can and cannot do
# (t-SNE keeps neighbourhoods, not distances: read clusters, not positions).

# %%
n_tsne = sizes["tsne_rows"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
for ax, (source_rows, title) in zip(axes, [(F_image["source"], "before alignment"), (aligned_image, "after CORAL")]):
    both = np.vstack([source_rows[:n_tsne], F_image["target"][:n_tsne]])
    xy = TSNE(2, init="pca", perplexity=30, random_state=lesson.seed).fit_transform(both)
    digit = np.r_[Y_image["source"][:n_tsne], Y_image["target"][:n_tsne]]
    for marker, rows, name in [("o", slice(0, n_tsne), "MNIST"), ("^", slice(n_tsne, None), "sklearn digits")]:
        ax.scatter(xy[rows, 0], xy[rows, 1], c=digit[rows], cmap="tab10", s=8, marker=marker, alpha=0.7, label=name)
    ax.set(title=f"t-SNE of image features, {title}", xlabel="t-SNE 1", ylabel="t-SNE 2")
    ax.legend(fontsize="small")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. A shift alignment cannot fix: the class shares

# %%
snippet_share, tweet_share = float(text_source.y.mean()), float(text_target.y.mean())
display(Markdown(findings.claim(
    "text_prior_shift", abs(snippet_share - tweet_share) > 0.1,
    f"The snippets are {snippet_share:.0%} positive, the tweets {tweet_share:.0%}. That is a **label (prior) "
    f"shift**: p(y) changes, and a probe trained on the snippets keeps their {snippet_share:.0%} in its intercept.",
    f"The snippets are {snippet_share:.0%} positive, the tweets {tweet_share:.0%}: on this sample the class shares "
    f"are close, so there is little label (prior) shift to correct.")))

# %% [markdown]
# A change of p(y) is a **label (prior) shift**. No transformation of x can fix it, because it is not
# about where the inputs lie but about how often each class occurs; a probe keeps its training data's
# class shares in its intercept. The correction is Bayes' rule, instance weighting *by class*: multiply each class probability by
# p_target(y)/p_source(y) and renormalise. With the true target shares (known here, unknown in
# practice) that gives a ceiling; the EM algorithm of Saerens et al. (2002) estimates the shares from
# unlabelled target predictions.

# %%
text_probe = probe().fit(F_text["source"], Y_text["source"])
source_prior = np.bincount(Y_text["source"], minlength=2) / len(Y_text["source"])
true_prior = np.bincount(Y_text["target"], minlength=2) / len(Y_text["target"])
em_prior = em_target_prior(text_probe.predict_proba(F_text["target"]), source_prior)
test_proba = text_probe.predict_proba(F_text["test"])
prior_rows = {
    "source only": np.mean(test_proba.argmax(1) == Y_text["test"]),
    "prior-corrected, true target shares": np.mean(adjust_to_prior(test_proba, source_prior, true_prior).argmax(1)
                                                     == Y_text["test"]),
    "prior-corrected, EM-estimated shares": np.mean(adjust_to_prior(test_proba, source_prior, em_prior).argmax(1)
                                                      == Y_text["test"]),
}
tweet_constant = constant_baseline(Y_text["test"], "accuracy")
print(f"positive share: snippets {source_prior[1]:.3f}, tweets (true) {true_prior[1]:.3f}, "
      f"EM estimate {em_prior[1]:.3f}")
pd.Series({**prior_rows, "constant predictor": tweet_constant}, name="tweet test accuracy").round(3).to_frame()

# %%
text_results = results["text: snippets → tweets"]
prior_change = prior_rows["prior-corrected, true target shares"] - prior_rows["source only"]
shift_cost = text_results["oracle (target labels)"] - text_results["source only"]  # seed means of section 3
prior_lines = [
    claims.claim(
        "prior_correction_small", abs(prior_change) < 0.02,
        f"Correcting the tweet probe with the *true* class shares changes its accuracy by only {prior_change:+.3f} "
        f"({prior_rows['source only']:.3f} → {prior_rows['prior-corrected, true target shares']:.3f}; constant "
        f"predictor {tweet_constant:.3f}).",
        f"Correcting the tweet probe with the *true* class shares changes its accuracy by {prior_change:+.3f} "
        f"({prior_rows['source only']:.3f} → {prior_rows['prior-corrected, true target shares']:.3f}; constant "
        f"predictor {tweet_constant:.3f}): not a small change."),
    claims.claim(
        "prior_not_most_of_gap", prior_change < 0.5 * shift_cost,
        f"The shift costs {shift_cost:.3f} (source-only probe vs a probe trained on tweet labels); the prior "
        f"correction recovers {prior_change:+.3f} of it, so most of this gap is not the prior but what the words "
        f"mean in tweets (one run).",
        f"The shift costs {shift_cost:.3f} (source-only probe vs a probe trained on tweet labels); the prior "
        f"correction recovers {prior_change:+.3f} of it: at least half of the gap is the prior (one run)."),
    findings.claim(
        "em_prior_close", abs(em_prior[1] - true_prior[1]) < 0.05,
        f"EM estimates a positive share of {em_prior[1]:.3f} against a true {true_prior[1]:.3f}: close.",
        f"EM estimates a positive share of {em_prior[1]:.3f} against a true {true_prior[1]:.3f}: off by "
        f"{em_prior[1] - true_prior[1]:+.3f}, so the EM correction rests on a wrong prior."),
]
display(Markdown("\n".join(f"- {line}" for line in prior_lines)))

# %% [markdown]
# The correction with the true shares is the honest upper bound of what fixing the prior can do. The
# EM estimate depends on the probe's probabilities being *calibrated on the target*, which a shift of
# inputs breaks: read the printed estimate against the true share. When it is far off, the "correction"
# can hurt: estimating a target prior from predictions is only as good as those predictions. A few
# dozen labelled target examples give an estimate that needs no calibration, with standard error
# $\sqrt{p(1-p)/n}$.
#
# **When does alignment help, then?** When the domains differ mainly in feature *statistics* that are
# unrelated to the label (lighting, scanner, style) and the label lives in directions the two domains
# share; when class shares are similar; and when the alignment is checked on a few labelled target
# examples. When the shift changes what the features mean for the label, or the class shares, use
# labels: a handful of target labels (lesson 02's TrAdaBoost, fine-tuning in lesson 04), a prior
# correction, or adversarial training that looks at classes as well (lesson 05).
#
# ## 5. Exercises
#
# **Exercise 1 (warm-up).** With a *linear* kernel k(x, y) = x·y, MMD² is the squared distance between
# the two samples' mean vectors: the simplest measure of a domain shift, and the part of it that moving
# the source to the target mean removes. Write it from the means, without any kernel matrix. The check
# compares it with the kernel form on samples of different sizes, identical samples, single rows and
# constant samples.

# %%
# NBVAL_CHECK_OUTPUT
from transfer_utils.core.exercises import check_function, check_prediction
from transfer_utils.solutions import lesson03 as solutions


def my_linear_mmd2(X: np.ndarray, Y: np.ndarray) -> float:
    ### BEGIN SOLUTION
    return float(np.sum((X.mean(axis=0) - Y.mean(axis=0)) ** 2))
    ### END SOLUTION


rng = np.random.default_rng(0)
same_rows = rng.normal(size=(10, 4))
mmd_cases = [(rng.normal(size=(20, 3)), rng.normal(1.0, 1.0, size=(15, 3))),  # different sizes and means
             (same_rows, same_rows),  # identical samples
             (np.array([[1.0, 2.0]]), np.array([[4.0, -2.0]])),  # one row each
             (np.zeros((5, 3)), np.ones((7, 3)))]  # constant samples
check_function(my_linear_mmd2, solutions.linear_mmd2, mmd_cases, name="exercise 1 (linear-kernel MMD)")

# %% [markdown]
# **Exercise 2 (apply).** Section 4's correction for a change of class shares, by hand: multiply each
# row of class probabilities by target_prior / source_prior and renormalise the row (Bayes' rule). No
# transformation of the features can do this; it is the fix for a label shift. The check compares it
# with `transfer_utils.methods.instance.adjust_to_prior` on two and three classes, equal priors (nothing
# should change), certain predictions, and the tweet probe's own probabilities moved from the snippets'
# class shares to the tweets'.

# %%
# NBVAL_CHECK_OUTPUT
def my_adjust_to_prior(proba: np.ndarray, source_prior: np.ndarray, target_prior: np.ndarray) -> np.ndarray:
    ### BEGIN SOLUTION
    adjusted = proba * (target_prior / source_prior)
    return adjusted / adjusted.sum(axis=1, keepdims=True)
    ### END SOLUTION


prior_cases = [(np.array([[0.6, 0.4], [0.2, 0.8]]), np.array([0.58, 0.42]), np.array([0.7, 0.3])),
               (np.array([[0.1, 0.3, 0.6]]), np.array([1 / 3] * 3), np.array([0.5, 0.25, 0.25])),
               (np.array([[0.6, 0.4], [0.5, 0.5]]), np.array([0.5, 0.5]), np.array([0.5, 0.5])),  # equal priors
               (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.5, 0.5]), np.array([0.9, 0.1])),  # certain rows
               (text_probe.predict_proba(F_text["test"][:5]), source_prior, true_prior)]  # the tweet probe
check_function(my_adjust_to_prior, adjust_to_prior, prior_cases, name="exercise 2 (prior correction)")

# %% [markdown]
# **Exercise 3 (extend).** Write CORAL without shrinkage, the alignment of section 3: centre the source,
# whiten it with C_s^{-1/2}, colour it with C_t^{1/2}, add the target mean. Use
# `np.cov(X, rowvar=False, bias=True)` for the covariances and `np.linalg.eigh` for the matrix powers
# (C^p = V·diag(λ^p)·Vᵀ). The check compares it with `CORAL(reg=0.0)` on correlated features, on a
# source aligned with itself (nothing should move), on a target that is a scaled and shifted copy of
# the source (CORAL should find that map exactly), and on a round source and an elongated target.

# %%
# NBVAL_CHECK_OUTPUT
def my_coral(Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
    ### BEGIN SOLUTION
    def power(C: np.ndarray, p: float) -> np.ndarray:
        values, vectors = np.linalg.eigh(C)
        return (vectors * values ** p) @ vectors.T

    Cs, Ct = np.cov(Xs, rowvar=False, bias=True), np.cov(Xt, rowvar=False, bias=True)
    return (Xs - Xs.mean(axis=0)) @ power(Cs, -0.5) @ power(Ct, 0.5) + Xt.mean(axis=0)
    ### END SOLUTION


correlated = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 3))
coral_cases = [(correlated, rng.normal(2.0, 1.0, size=(40, 3))),  # correlated source, shifted target
               (correlated, correlated),  # a source aligned with itself
               (correlated, 3 * correlated + 1),  # a scaled, shifted copy of the source
               (rng.normal(size=(60, 2)), rng.normal(size=(30, 2)) * np.array([5.0, 0.2]))]  # round → elongated
check_function(my_coral, solutions.coral_without_shrinkage, coral_cases, name="exercise 3 (CORAL by hand)",
               atol=1e-8)

# %% [markdown]
# **Exercise 4 (experiment).** Section 2 read each shift's MMD² against a noise level: the MMD² between
# two halves of the *same* source sample, on `sizes["mmd_rows"]` rows. The cell below measures that
# noise level again on the text features, with the same kernel width, but on a quarter of the rows.
# Predict before you run: will the noise level be "higher", "lower" or "about the same"? Put your
# prediction in `my_prediction`, then run the cell below. Why it matters: a target domain often comes
# with few examples, and a measured shift means something only against the noise at the same sample size.

# %%
def my_prediction() -> str:
    ### BEGIN SOLUTION
    return "higher"
    ### END SOLUTION


# %%
source_rows = mmd_rows(F_text)[0]
quarter = source_rows[: len(source_rows) // 4]
before = mmd2(source_rows[: len(source_rows) // 2], source_rows[len(source_rows) // 2:], gammas["text"])
after = mmd2(quarter[: len(quarter) // 2], quarter[len(quarter) // 2:], gammas["text"])
outcome = "higher" if after > 1.5 * before else "lower" if after < before / 1.5 else "about the same"
check_prediction(my_prediction, outcome, name="exercise 4 (experiment: MMD noise and sample size)",
                 choices=["higher", "lower", "about the same"],
                 evidence=f"MMD² between two halves of {len(source_rows)} source rows {before:.4f}, of "
                          f"{len(quarter)} rows {after:.4f} (snippets vs tweets on {len(source_rows)} rows: "
                          f"{mmd_noise['text'][0]:.4f})")

# %% [markdown]
# ## 6. Results

# %%
metrics = {"n_text_source": len(text_source), "n_text_test": len(text_test), "n_image_source": len(mnist_part),
           "n_image_test": len(Y_image["test"])}
for column, shift in shift_keys.items():
    r = results[column]
    metrics.update({f"{shift}_target_acc_source_only": float(r["source only"]),
                    f"{shift}_target_acc_coral": float(r["CORAL"]),
                    f"{shift}_target_acc_sa": float(r["subspace alignment"]),
                    f"{shift}_target_acc_tca": float(r["TCA"]),
                    f"{shift}_target_acc_oracle": float(r["oracle (target labels)"]),
                    f"{shift}_mmd_before": float(r["MMD² before"]),
                    f"{shift}_mmd_after": float(r["MMD² after CORAL"]),
                    f"{shift}_mmd_tca_mu0": float(r["MMD² TCA space, mu = 0"]),
                    f"{shift}_mmd_tca": float(r["MMD² TCA space, mu > 0"]),
                    **{f"{shift}_target_acc_{key}_std": float(runs[column][name].std()) for name, key in
                       {**alignments, "source only": "source_only"}.items()},
                    f"{shift}_runs": runs[column][accuracy_rows].round(4).to_dict("records")})
metrics.update({"text_source_positive_share": float(source_prior[1]), "text_target_positive_share": float(true_prior[1]),
                "text_em_positive_share": float(em_prior[1]),
                "text_target_acc_prior_true": float(prior_rows["prior-corrected, true target shares"]),
                "text_target_acc_prior_em": float(prior_rows["prior-corrected, EM-estimated shares"])})
for column, shift in shift_keys.items():
    metrics[f"{shift}_target_acc_constant"] = float(results[column]["constant predictor"])
metrics["n_seeds"] = len(seeds)
metrics["text_predicted_positive_share_sa"] = float(d["predicted positive share, subspace alignment"])
metrics["text_class_cosine_before"] = float(d["class-direction cosine, no alignment"])
metrics["text_class_cosine_sa"] = float(d["class-direction cosine, subspace alignment"])
metrics["text_class_cosine_coral"] = float(d["class-direction cosine, CORAL"])
metrics.update({"findings": findings.as_metrics()["claims"], **claims.as_metrics()})
lesson.save_metrics(metrics)
for shift in ("text", "image", "blend"):
    assert metrics[f"{shift}_mmd_after"] < 0.5 * metrics[f"{shift}_mmd_before"], "CORAL should shrink the MMD"
    assert metrics[f"{shift}_target_acc_oracle"] > metrics[f"{shift}_target_acc_source_only"], "the shift should cost"
# ... and on the images the source-only probe transfers something a constant answer does not (over seeds). On the
# tweets always answering negative scores about 0.7, and the lesson reports whether the probe is clearly above it.
for shift in ("image", "blend"):
    column = next(c for c, key in shift_keys.items() if key == shift)
    assert compare(runs[column]["source only"], runs[column]["constant predictor"]).winner == "A", shift
assert metrics["text_target_positive_share"] < metrics["text_source_positive_share"] - 0.15, "a real prior shift"
assert metrics["text_target_acc_prior_true"] >= metrics["text_target_acc_source_only"] - 0.01
# the style shift is where alignment helps: at least one method clearly above the source-only probe, over seeds
blend_runs = runs["image: MNIST → photo-blended MNIST"]
assert any(compare(blend_runs[name], blend_runs["source only"]).winner == "A" for name in alignments), \
    "an alignment method should clearly beat the source-only probe on the photo-blended digits"

# %% [markdown]
# ## Summary and what next

# %%
display(Markdown(claims.markdown(f"What this run showed (target-test accuracies, {len(seeds)} seeds per shift, each "
                                 "beside what a constant predictor scores)")))

# %% [markdown]
# * A frozen pretrained network plus a linear probe can transfer across domains without any adaptation;
#   whether it does is read against a constant predictor, not against chance, and against a probe
#   trained on target labels.
# * MMD measures how far two feature clouds are; CORAL, subspace alignment and TCA are built to bring the
#   clouds closer. Whether the target accuracy follows depends on whether the classes move together:
#   check it (class directions, predicted shares), and compare over seeds before calling an alignment a gain.
# * A change of class shares is not a feature-space problem: it needs a prior correction, which needs a
#   trustworthy estimate of the target's class shares; measure how much of a gap it explains.
#
# **Next:** [04 · Model-based transfer](04_model_based.ipynb) stops freezing the network: fine-tuning,
# freezing schedules and what the source task forgets.
