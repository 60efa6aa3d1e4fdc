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
# # 06 · Attention math, checked against a real BERT
#
# **Goals.** By the end of this notebook you will
# 1. compute scaled dot-product attention, softmax(Q·Kᵀ/√d_k)·V, by hand on numbers small enough to
#    follow, and trust a 10-line implementation of it because it agrees with PyTorch's;
# 2. know *why* the scores are divided by √d_k, from a measurement rather than a slogan;
# 3. know what a padding mask does, and see what goes wrong on real padded sentences without one;
# 4. split a layer into heads and merge them back (multi-head attention);
# 5. reproduce every attention probability of a real pretrained BERT (MiniLM, 6 layers × 12 heads) from
#    its own weights, look at what some heads do, and measure how the cost of attention grows with length.
#
# **Prerequisites.** Matrix products and the softmax function; lesson 00 (how lessons run). No
# knowledge of Transformers is assumed.
#
# **Time.** for you ≈ 45 min reading + 35 min exercises; for the machine, smoke ≈ 0.4 min · default ≈ 0.5 min on a 2-core CPU (measured by `bench/lesson_times.py`).

# %%
import inspect
import math
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from tqdm.auto import tqdm

# %% tags=["parameters"]
seed: int = 0  # seeds the random vectors of the experiments and the choice of real sentences
device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps"
profile: str = os.environ.get("COURSE_PROFILE", "default")  # "smoke" (CI, ~1 min), "default" (laptop), "full"
metrics_path: str = ""  # where the metrics JSON goes; "" means data/runs/<profile>/06_attention_math.metrics.json
model_name: str = "minilm"  # a BERT-family encoder: "minilm" (offline) or e.g. "bert-base-uncased" (cached)
d_k: int = 64  # key size at which the scaled and unscaled softmax entropies are reported (BERT-base uses 64)
n_keys: int = 16  # how many keys each query compares itself with in the √d_k experiment
n_sentences: int = 16  # real critic snippets run through the model

# %%
from transfer_utils import attention
from transfer_utils.data import datasets
from transfer_utils.core import plots
from transfer_utils.models.pretrained import load_text_encoder
from transfer_utils.models.pretrained import check_text_model
from transfer_utils.core.evidence import Claims
from transfer_utils.core.runtime import check_int, start_lesson

lesson = start_lesson("06_attention_math", seed=seed, device=device, profile=profile, metrics_path=metrics_path)
claims = Claims()  # the sentences this run's numbers decide, shown in the summary and saved with the metrics
check_text_model("model_name", model_name)
plots.setup()
settings = lesson.pick(
    smoke={"pairs": 4000, "timing_n": [128, 512, 1024, 1448, 2048], "rounds": 4},
    default={"pairs": 20000, "timing_n": [64, 128, 256, 512, 1024, 1448, 2048], "rounds": 5},
)
# The √d_k experiment compares the softmax entropy with and without the scale: below d_k = 32 or 8 keys the
# gap is under the 1 nat the lesson asserts; each of its pairs // n_keys rows needs n_keys keys (≥ 10 rows).
check_int("d_k", d_k, low=32, high=4096)
check_int("n_keys", n_keys, low=8, high=settings["pairs"] // 10)
check_int("n_sentences", n_sentences, low=2, high=256)
print(lesson, settings)

# %% [markdown]
# ## 1. What the sources say, and what this lesson adds
#
# The course's source articles use attention in one sentence and one formula: attention lets a model
# concentrate on the parts of its input that matter, computed as
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right)V,$$
#
# with $Q$ the queries, $K$ the keys, $V$ the values and $d_k$ the length of a key vector. They then
# fine-tune BERT, a stack of such attention layers pretrained on unlabelled text, and pass an
# `attention_mask` to every call without saying what it does. Three things are worth adding:
#
# * In BERT the attention is **self**-attention: every token of the sentence produces its own query,
#   key and value (three learned linear maps of its current vector), so each token decides how much to
#   read from every other token *of the same sentence*. The weights are recomputed for every input;
#   the task only shapes them indirectly, through training.
# * The √d_k and the mask are not decoration. Section 3 measures what the √d_k prevents; section 4
#   shows what happens to real sentences when the mask is left out.
# * Attention is not free: its time and memory grow with the square of the input length (section 8),
#   which is why these models cap how long an input may be.
#
# ## 2. Attention by hand
#
# Three tokens, keys and queries of size $d_k = 2$, values of size 2. Think of each query as a question
# a token asks ("who is my subject?") and each key as the label a token carries; the value is what a
# token hands over when it is read.

# %%
tokens = ["the", "cat", "sat"]
Q = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # one query per token (rows)
K = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # one key per token
V = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])  # one value per token


def table(matrix: torch.Tensor, rows: list[str], columns: list[str]) -> pd.DataFrame:
    """A small matrix with token labels, rounded for reading."""
    return pd.DataFrame(matrix.numpy(), index=rows, columns=columns).round(3)


scores = Q @ K.T  # entry (i, j): how well query i matches key j
table(scores, [f"query {t}" for t in tokens], [f"key {t}" for t in tokens])

# %% [markdown]
# Row *the* reads: its query (1, 0) matches key *the* (1, 0) with 1·1 + 0·0 = 1, key *cat* (0, 1) with 0,
# key *sat* (1, 1) with 1. Next, divide by $\sqrt{d_k} = \sqrt{2} \approx 1.414$ and turn each row into
# probabilities with the softmax, $p_j = e^{s_j} / \sum_m e^{s_m}$:

# %%
scaled = scores / math.sqrt(Q.shape[-1])
row = scaled[0]
print("scaled scores of 'the':", row.numpy().round(3))
print("e^score:               ", row.exp().numpy().round(3), " sum:", round(float(row.exp().sum()), 3))
print("probabilities:         ", (row.exp() / row.exp().sum()).numpy().round(3))
weights = scaled.softmax(dim=-1)
table(weights, [f"query {t}" for t in tokens], [f"key {t}" for t in tokens])

# %% [markdown]
# Every row sums to 1: it says how the token spreads its attention over the sentence. The output of a
# token is the same mixture of the **values**, each value weighted by the token's row of probabilities:

# %%
output = weights @ V
w = weights[0]  # the row of 'the'
display(Markdown("*the* gets " + " + ".join(f"{float(w[j]):.3f}·({V[j, 0]:g}, {V[j, 1]:g})" for j in range(3))
                 + f" = ({float(output[0, 0]):.3f}, {float(output[0, 1]):.3f})."))
print("by hand for 'the':", (w[0] * V[0] + w[1] * V[1] + w[2] * V[2]).numpy().round(3))
table(output, [f"output {t}" for t in tokens], ["dim 0", "dim 1"])

# %% [markdown]
# That is the whole formula. The course's implementation, `transfer_utils.attention`, is the same
# three lines plus an optional mask (section 4) and a check of the shapes:

# %%
print(inspect.getsource(attention.scaled_dot_product_attention))

# %% [markdown]
# **Can we trust it?** PyTorch ships the same operation, `torch.nn.functional.scaled_dot_product_attention`,
# with fused, optimised kernels. Compare the two on the tiny example and on random inputs of several
# shapes, with and without masks (a boolean mask says where a query may look; a float mask is added to
# the scores).

# %%
ours, _ = attention.scaled_dot_product_attention(Q, K, V)
print("tiny example, max |ours - torch|:", float((ours - F.scaled_dot_product_attention(Q, K, V)).abs().max()))

generator = torch.Generator().manual_seed(lesson.seed)
checks = []
shapes = [((2,), 5, 5, 8, 8), ((2, 3), 4, 7, 16, 5), ((1, 12), 40, 40, 32, 32), ((4, 8), 9, 13, 64, 64)]
for lead, lq, lk, dk, dv in shapes:  # (batch dims, query length, key length, d_k, d_v)
    q, k, v = (torch.randn(*lead, length, size, generator=generator) for length, size in ((lq, dk), (lk, dk), (lk, dv)))
    boolean = torch.rand(*lead, lq, lk, generator=generator) > 0.3
    boolean[..., 0] = True  # leave every query at least one key
    additive = torch.randn(*lead, lq, lk, generator=generator)
    for kind, mask in [("none", None), ("boolean", boolean), ("additive", additive)]:
        mine, _ = attention.scaled_dot_product_attention(q, k, v, mask)
        theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        checks.append({"q shape": tuple(q.shape), "mask": kind, "max_abs_diff": float((mine - theirs).abs().max())})
checks = pd.DataFrame(checks)
sdpa_max_abs_diff = float(checks["max_abs_diff"].max())
print(f"largest difference over {len(checks)} cases: {sdpa_max_abs_diff:.1e}")
checks

# %% [markdown]
# Differences of order 1e-7 are float32 rounding: PyTorch's kernels apply the scale at another point
# and fuse steps, so they add the same numbers in a slightly different order.
#
# ## 3. Why divide by √d_k?
#
# Take query and key vectors whose $d_k$ entries are independent with mean 0 and variance 1 (roughly what
# a freshly initialised network produces). Their dot product $q\cdot k = \sum_{i=1}^{d_k} q_i k_i$ is a
# sum of $d_k$ independent terms of variance 1, so its **variance is $d_k$** and its typical size
# $\sqrt{d_k}$. Measure it:

# %%
d_values = sorted({4, 16, 64, 256, 1024, d_k})
rows = []
for d in tqdm(d_values, desc="d_k"):
    g = torch.Generator().manual_seed(lesson.seed)
    q = torch.randn(settings["pairs"] // n_keys, 1, d, generator=g)  # one query per row ...
    k = torch.randn(settings["pairs"] // n_keys, n_keys, d, generator=g)  # ... against n_keys keys
    raw = (q @ k.transpose(-2, -1)).squeeze(1)  # unscaled scores, (rows, n_keys)
    for name, logits in [("unscaled", raw), ("scaled by 1/√d_k", raw / math.sqrt(d))]:
        p = logits.softmax(dim=-1)
        jacobian = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # ∂p_i/∂s_j = p_i(δ_ij - p_j)
        rows.append({"d_k": d, "version": name, "score_variance": float(logits.var()),
                     "entropy": float(attention.softmax_entropy(p).mean()),
                     "top_probability": float(p.max(dim=-1).values.mean()),
                     "gradient_size": float(jacobian.flatten(1).norm(dim=1).mean())})
experiment = pd.DataFrame(rows)
experiment.round(3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for name, part in experiment.groupby("version", sort=False):
    axes[0].plot(part["d_k"], part["score_variance"], marker="o", label=name)
    axes[1].plot(part["d_k"], part["entropy"], marker="o", label=name)
    axes[2].plot(part["d_k"], part["gradient_size"], marker="o", label=name)
axes[0].plot(d_values, d_values, "k--", linewidth=1, label="y = d_k")
axes[0].set(xscale="log", yscale="log", title="Variance of q·k grows like d_k", xlabel="d_k",
            ylabel="variance of the scores")
axes[1].axhline(math.log(n_keys), color="grey", linestyle=":", label=f"uniform: ln {n_keys}")
axes[1].set(xscale="log", title=f"Softmax entropy over {n_keys} keys", xlabel="d_k", ylabel="entropy (nats)")
axes[2].set(xscale="log", title="Size of the softmax's gradient", xlabel="d_k", ylabel="mean ‖∂p/∂s‖")
for ax in axes:
    ax.legend(fontsize="small")
fig.tight_layout()
plt.show()

# %%
at_dk = experiment[experiment["d_k"] == d_k].set_index("version")
scaled_softmax_entropy = float(at_dk.loc["scaled by 1/√d_k", "entropy"])
unscaled_softmax_entropy = float(at_dk.loc["unscaled", "entropy"])
unscaled_rows = experiment[experiment["version"] == "unscaled"]
variance_ratio = unscaled_rows["score_variance"] / unscaled_rows["d_k"]
print(f"measured variance / d_k: {variance_ratio.min():.3f} to {variance_ratio.max():.3f} (theory: 1)")
print(f"at d_k = {d_k}: entropy scaled {scaled_softmax_entropy:.3f} vs unscaled {unscaled_softmax_entropy:.3f} nats "
      f"(uniform would be {math.log(n_keys):.3f}); top probability scaled "
      f"{at_dk.loc['scaled by 1/√d_k', 'top_probability']:.3f} "
      f"vs unscaled {at_dk.loc['unscaled', 'top_probability']:.3f}")
scaled_gradient, unscaled_gradient = (float(at_dk.loc[v, "gradient_size"]) for v in ("scaled by 1/√d_k", "unscaled"))
display(Markdown("\n".join("- " + text for text in [
    claims.claim("score_variance_is_d_k", 0.85 < variance_ratio.min() and variance_ratio.max() < 1.15,
                 f"The variance of the unscaled scores measured {variance_ratio.min():.3f} to "
                 f"{variance_ratio.max():.3f} times $d_k$ over $d_k$ = {d_values}: the theory's factor 1 holds.",
                 f"The variance of the unscaled scores measured {variance_ratio.min():.3f} to "
                 f"{variance_ratio.max():.3f} times $d_k$: further from the theory's 1 than the lesson's bar "
                 "(±0.15)."),
    claims.claim("unscaled_softmax_saturates", scaled_softmax_entropy > unscaled_softmax_entropy + 1.0,
                 f"At $d_k$ = {d_k}, dropping the 1/√d_k made the softmax saturate: entropy "
                 f"{unscaled_softmax_entropy:.3f} instead of {scaled_softmax_entropy:.3f} nats "
                 f"(uniform {math.log(n_keys):.3f}), more than 1 nat lower.",
                 f"At $d_k$ = {d_k}, dropping the 1/√d_k did NOT clearly saturate the softmax: entropy "
                 f"{unscaled_softmax_entropy:.3f} vs {scaled_softmax_entropy:.3f} nats, less than 1 nat apart."),
    claims.claim("unscaled_gradient_smaller", unscaled_gradient < scaled_gradient,
                 f"The softmax's gradient was smaller without the scale ({unscaled_gradient:.3f} vs "
                 f"{scaled_gradient:.3f} at $d_k$ = {d_k}).",
                 f"The softmax's gradient was NOT smaller without the scale ({unscaled_gradient:.3f} vs "
                 f"{scaled_gradient:.3f} at $d_k$ = {d_k})."),
])))

# %% [markdown]
# Why it matters: without the factor, the scores spread wider as $d_k$ grows, and a softmax of widely
# spread scores **saturates**: almost all weight lands on one key (entropy near 0, top probability near
# 1). A saturated softmax is also flat in its inputs, so its gradient shrinks and the queries and keys
# barely learn. Dividing by √d_k brings the scores back to variance 1 for every $d_k$, so entropy and
# gradient do not depend on the head size (the sentences above say what this run measured). The argument
# is about the *start* of training, with random vectors; a trained model can learn larger or smaller
# scores where it needs them (section 6 looks at MiniLM).
#
# ## 4. Padding masks
#
# Sentences in a batch have different lengths, so the tokenizer pads the short ones with `[PAD]` tokens
# and returns `attention_mask` (1 = real token, 0 = padding). Inside attention, a padded **key** must get
# zero weight, otherwise real tokens read from filler. `padding_mask` turns the tokenizer's mask into a
# boolean tensor of shape (batch, 1, 1, length) that broadcasts over heads and queries:

# %%
tiny_mask = torch.tensor([[1, 1, 1, 0]])  # three real tokens, one pad
q, k, v = (torch.randn(1, 4, 2, generator=generator) for _ in range(3))
_, with_mask = attention.scaled_dot_product_attention(q, k, v, attention.padding_mask(tiny_mask)[:, 0])
_, without_mask = attention.scaled_dot_product_attention(q, k, v)
print("weights of the first token with the mask:   ", with_mask[0, 0].numpy().round(3))
print("weights of the first token without the mask:", without_mask[0, 0].numpy().round(3))

# %% [markdown]
# Now with real padded sentences. Load the pretrained MiniLM with the *eager* attention code, the
# plain PyTorch version that can return its attention probabilities (the default, fused `sdpa` kernel
# does not), and take real critic snippets from Rotten Tomatoes.

# %%
tokenizer, model = load_text_encoder(model_name, attn_implementation="eager")
model = model.to(lesson.device)
config = model.config
print(f"{model_name}: {config.num_hidden_layers} layers, {config.num_attention_heads} heads of size "
      f"{config.hidden_size // config.num_attention_heads}, hidden size {config.hidden_size}")
snippets = datasets.sample_n(datasets.load_rotten_tomatoes().test, n_sentences, seed=lesson.seed)
lengths = [len(tokenizer(t, truncation=True, max_length=64)["input_ids"]) for t in snippets.x]
short_text, long_text = snippets.x[int(np.argmin(lengths))], snippets.x[int(np.argmax(lengths))]
print(f"short ({min(lengths)} tokens): {short_text!r}\nlong  ({max(lengths)} tokens): {long_text!r}")

# %%
from transfer_utils.models.embeddings import mean_pool


@torch.no_grad()
def run(texts: list[str], use_mask: bool = True):
    """MiniLM on a padded batch; without the mask every position, padding included, counts as a token."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt").to(lesson.device)
    mask = batch["attention_mask"] if use_mask else torch.ones_like(batch["attention_mask"])
    out = model(input_ids=batch["input_ids"], attention_mask=mask, output_attentions=True)
    return batch, out


alone_batch, alone = run([short_text])
padded_batch, padded = run([short_text, long_text])
_, unmasked = run([short_text, long_text], use_mask=False)
n_short = int(alone_batch["attention_mask"].sum())
real_mask = padded_batch["attention_mask"][:1]
reference = mean_pool(alone.last_hidden_state, alone_batch["attention_mask"])
cos_masked = float(F.cosine_similarity(reference, mean_pool(padded.last_hidden_state[:1], real_mask)))
cos_unmasked = float(F.cosine_similarity(reference, mean_pool(unmasked.last_hidden_state[:1], real_mask)))
diff_masked = float((padded.last_hidden_state[0, :n_short] - alone.last_hidden_state[0]).abs().max())
diff_unmasked = float((unmasked.last_hidden_state[0, :n_short] - alone.last_hidden_state[0]).abs().max())
pad_share = [float(a[0, :, :n_short, n_short:].sum(-1).mean()) for a in unmasked.attentions]
print(f"short snippet padded from {n_short} to {padded_batch['input_ids'].shape[1]} tokens")
print(f"with the mask:    token vectors differ from the unpadded run by at most {diff_masked:.1e}; "
      f"sentence-vector cosine {cos_masked:.6f}")
print(f"without the mask: token vectors differ by up to {diff_unmasked:.2f}; sentence-vector cosine {cos_unmasked:.4f}")
print("share of attention the real tokens put on [PAD] without the mask, per layer:", np.round(pad_share, 3))
display(Markdown("\n".join("- " + text for text in [
    claims.claim("mask_makes_padding_harmless", cos_masked > 0.99999,
                 f"With the mask, padding changed nothing beyond rounding: token vectors within {diff_masked:.1e} "
                 f"of the unpadded run, sentence-vector cosine {cos_masked:.6f}.",
                 f"With the mask, padding still changed the snippet: token vectors moved by {diff_masked:.1e}, "
                 f"sentence-vector cosine {cos_masked:.6f} (bar 0.99999)."),
    claims.claim("no_mask_reads_padding", cos_unmasked < cos_masked and max(pad_share) > 0.05,
                 f"Without the mask, the real tokens put on average {max(pad_share):.3f} of their attention on "
                 f"`[PAD]` in the layer where that share was largest, their vectors moved by up to {diff_unmasked:.2f} and the sentence-vector cosine "
                 f"fell to {cos_unmasked:.4f}.",
                 f"Without the mask, this snippet hardly changed (at most {max(pad_share):.3f} of the attention "
                 f"on `[PAD]`, cosine {cos_unmasked:.4f}): the run does not show the harm."),
])))

# %% [markdown]
# The mask exists so that padding changes nothing beyond rounding: the same snippet must get the same
# vector whatever it is batched with. A snippet whose real tokens spend attention on `[PAD]` positions
# gets token and sentence vectors, and so predictions, that depend on which *other* sentences happen to
# share its batch. (The mean pooling above also uses the mask, for the same reason.)
#
# ## 5. Several heads
#
# One attention over the full 384 features would let each token read from others in one way only.
# BERT instead **splits** the features into 12 heads of 32, runs attention in each head independently
# (each with its own queries and keys, so its own idea of what is relevant), and **merges** the 12
# outputs back side by side; an output projection then mixes them. Splitting is only a reshape:

# %%
hidden = torch.randn(2, 5, config.hidden_size, generator=generator)  # (batch, length, features)
heads = attention.split_heads(hidden, config.num_attention_heads)
print("split:", tuple(hidden.shape), "→", tuple(heads.shape), "(batch, heads, length, head size)")
print("merge:", tuple(heads.shape), "→", tuple(attention.merge_heads(heads).shape),
      "| round trip exact:", torch.equal(attention.merge_heads(heads), hidden))
print(inspect.getsource(attention.MultiHeadAttention.forward))

# %% [markdown]
# The module `attention.MultiHeadAttention` (four linear maps around `multi_head_attention`) gives the
# same result as PyTorch's `torch.nn.MultiheadAttention` once the weights are copied across
# (PyTorch keeps the three input projections stacked in one matrix):

# %%
torch.manual_seed(lesson.seed)
ours_mha = attention.MultiHeadAttention(64, 8)
torch_mha = torch.nn.MultiheadAttention(64, 8, batch_first=True)
with torch.no_grad():
    torch_mha.in_proj_weight.copy_(torch.cat([ours_mha.query.weight, ours_mha.key.weight, ours_mha.value.weight]))
    torch_mha.in_proj_bias.copy_(torch.cat([ours_mha.query.bias, ours_mha.key.bias, ours_mha.value.bias]))
    torch_mha.out_proj.load_state_dict(ours_mha.out.state_dict())
    x = torch.randn(2, 7, 64, generator=generator)
    token_mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1] * 7])
    mha_out, mha_probs = ours_mha(x, mask=attention.padding_mask(token_mask))
    ref_out, ref_probs = torch_mha(x, x, x, key_padding_mask=token_mask == 0, average_attn_weights=False)
mha_max_abs_diff = max(float((mha_out - ref_out).abs().max()), float((mha_probs - ref_probs).abs().max()))
print(f"max |ours - torch.nn.MultiheadAttention| (outputs and probabilities): {mha_max_abs_diff:.1e}")
display(Markdown(claims.claim(
    "hand_written_attention_matches_pytorch", sdpa_max_abs_diff < 1e-5 and mha_max_abs_diff < 1e-5,
    f"The hand-written attention matched PyTorch's fused kernel (largest difference {sdpa_max_abs_diff:.1e}) and "
    f"`torch.nn.MultiheadAttention` ({mha_max_abs_diff:.1e}) to float32 rounding (bar 1e-5).",
    f"The hand-written attention did NOT match PyTorch to 1e-5: largest differences {sdpa_max_abs_diff:.1e} "
    f"(fused kernel) and {mha_max_abs_diff:.1e} (`torch.nn.MultiheadAttention`).")))

# %% [markdown]
# ## 6. The real thing: every head of a pretrained BERT, reproduced
#
# Now the test that matters. Run the real snippets through MiniLM, asking for the hidden states (the
# vectors entering each layer) and the model's own attention probabilities. Then, for every layer,
# recompute the probabilities ourselves from that layer's `query` and `key` weights and our formula:

# %%
print(inspect.getsource(attention.bert_attention))

# %% [markdown]
# Which vectors enter layer ℓ? With `output_hidden_states=True` the model returns them:
# `hidden_states[0]` is the output of the embeddings (it enters layer 0), `hidden_states[ℓ]` the output
# of layer ℓ−1. A forward hook, which sees the real input of a layer as it runs, confirms it:

# %%
batch = tokenizer(snippets.x, padding=True, truncation=True, max_length=64, return_tensors="pt").to(lesson.device)
seen = {}
hook = model.encoder.layer[2].register_forward_pre_hook(lambda module, args: seen.update(input=args[0]))
with torch.no_grad():
    outputs = model(**batch, output_attentions=True, output_hidden_states=True)
hook.remove()
print("input seen by layer 2 equals hidden_states[2]:", torch.equal(seen["input"], outputs.hidden_states[2]))

# %%
per_layer = pd.DataFrame(attention.compare_with_bert(model, batch))
bert_attention_max_abs_diff = float(per_layer["max_abs_diff"].max())
print(f"{n_sentences} snippets × {config.num_hidden_layers} layers × {config.num_attention_heads} heads; "
      f"largest difference from the model's own probabilities: {bert_attention_max_abs_diff:.1e}")
display(Markdown(claims.claim(
    "bert_attention_reproduced", bert_attention_max_abs_diff <= 1e-5,
    f"Every attention probability of {model_name} ({config.num_hidden_layers} layers × "
    f"{config.num_attention_heads} heads, {n_sentences} snippets) was reproduced from its weights to within "
    f"{bert_attention_max_abs_diff:.1e} (bar 1e-5).",
    f"The recomputed probabilities of {model_name} differ from the model's own by up to "
    f"{bert_attention_max_abs_diff:.1e}, above the bar of 1e-5: the formula does not reproduce this model.")))
per_layer

# %% [markdown]
# When the recomputation does the same operations in the same order as the library, the match can be
# exact; reordering the arithmetic, for instance scaling the queries *before* the product, leaves a
# difference at float32 rounding level:

# %%
with torch.no_grad():
    block = attention.bert_self_attention_module(model, 0)
    q0, k0 = (attention.split_heads(f(outputs.hidden_states[0]), config.num_attention_heads)
              for f in (block.query, block.key))
    head_size = q0.shape[-1]
    reordered = attention.apply_mask((q0 / math.sqrt(head_size)) @ k0.transpose(-2, -1),
                                     attention.padding_mask(batch["attention_mask"])).softmax(-1)
print(f"layer 0, scale applied to q first: max difference {float((reordered - outputs.attentions[0]).abs().max()):.1e}")

# %% [markdown]
# What about √d_k in a trained model? Recompute the same layers with the factor dropped (scale 1
# instead of 1/√32). If section 3's argument carries over to a trained network, the heads become sharper
# (lower entropy). (This is not how the model was trained, so the numbers show what the factor does, not a
# better model.)

# %%
entropy_rows = []
real_keys = batch["attention_mask"].bool()
with torch.no_grad():
    for layer in range(config.num_hidden_layers):
        block = attention.bert_self_attention_module(model, layer)
        h = outputs.hidden_states[layer]
        q, k, v = (attention.split_heads(f(h), config.num_attention_heads)
                   for f in (block.query, block.key, block.value))
        for name, scale in [("as trained (1/√d_k)", None), ("without 1/√d_k", 1.0)]:
            _, p = attention.scaled_dot_product_attention(q, k, v, attention.padding_mask(batch["attention_mask"]),
                                                          scale=scale)
            entropy = attention.softmax_entropy(p).permute(0, 2, 1)[real_keys]  # (real tokens, heads)
            entropy_rows.append({"layer": layer, "version": name, "mean entropy (nats)": float(entropy.mean())})
entropy_table = pd.DataFrame(entropy_rows).pivot(index="layer", columns="version", values="mean entropy (nats)")
entropy_drop = entropy_table["as trained (1/√d_k)"] - entropy_table["without 1/√d_k"]
display(Markdown(claims.claim(
    "trained_heads_sharper_without_scale", bool((entropy_drop > 0).all()),
    f"Without 1/√d_k every layer's heads became sharper: mean entropy {entropy_drop.min():.3f} to "
    f"{entropy_drop.max():.3f} nats lower, the saturation of section 3 in a real network.",
    f"Without 1/√d_k the heads did NOT become sharper in every layer (entropy change per layer "
    f"{(-entropy_drop).round(3).tolist()} nats).")))
entropy_table.round(3)

# %% [markdown]
# ## 7. What do the heads look at?
#
# With probabilities we can trust, look at a few heads. Over the real snippets, score every head of
# every layer for three simple habits (reading the previous token, reading the next token, reading
# `[CLS]`, the first token), plus how spread out it is (entropy), and draw the head that is the most
# extreme at each.

# %%
habits = []
for layer, probs in enumerate(outputs.attentions):
    for b in range(probs.shape[0]):
        n = int(batch["attention_mask"][b].sum())
        p = probs[b, :, :n, :n].cpu()
        habits.append(pd.DataFrame({
            "layer": layer, "head": range(p.shape[0]),
            "previous token": p.diagonal(offset=-1, dim1=1, dim2=2).mean(-1),
            "next token": p.diagonal(offset=1, dim1=1, dim2=2).mean(-1),
            "[CLS]": p[:, :, 0].mean(-1), "entropy": attention.softmax_entropy(p).mean(-1)}))
habits = pd.DataFrame(pd.concat(habits).groupby(["layer", "head"]).mean())
picked = {}
for habit in ["previous token", "next token", "[CLS]", "entropy"]:
    best = habits[habit].drop(list(picked.values()), errors="ignore").idxmax()
    picked[habit] = best
(prev_layer, prev_head), (cls_layer, cls_head) = picked["previous token"], picked["[CLS]"]
prev_share = float(habits.loc[picked["previous token"], "previous token"])
cls_share = float(habits.loc[picked["[CLS]"], "[CLS]"])
display(Markdown("\n".join("- " + text for text in [
    claims.claim("a_head_reads_previous_token", prev_share > 0.5,
                 f"Head {prev_head} of layer {prev_layer} put on average {prev_share:.3f} of its attention on the "
                 "previous token: it follows the word order.",
                 f"No head put most of its attention on the previous token (at most {prev_share:.3f}, "
                 f"head {prev_head} of layer {prev_layer})."),
    claims.claim("a_head_reads_cls", cls_share > 0.5,
                 f"Head {cls_head} of layer {cls_layer} put on average {cls_share:.3f} of its attention on `[CLS]`.",
                 f"No head put most of its attention on `[CLS]` (at most {cls_share:.3f}, head {cls_head} "
                 f"of layer {cls_layer})."),
])))
pd.DataFrame({habit: habits.loc[best] for habit, best in picked.items()}).T.round(3).rename_axis("most extreme at")

# %%
sentence = min((t for t in snippets.x if 10 <= len(tokenizer(t)["input_ids"]) <= 16), key=len, default=short_text)
one = tokenizer([sentence], return_tensors="pt").to(lesson.device)
with torch.no_grad():
    one_out = model(**one, output_attentions=True, output_hidden_states=True)
labels = tokenizer.convert_ids_to_tokens(one["input_ids"][0])
fig, axes = plt.subplots(1, 4, figsize=(14, 4.2), layout="constrained")
for ax, (habit, (layer, head)) in zip(axes, picked.items()):
    _, ours_one = attention.bert_attention(model, layer, one_out.hidden_states[layer], one["attention_mask"])
    image = ax.imshow(ours_one[0, head].cpu(), cmap="viridis", vmin=0, vmax=1)
    ax.grid(False)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set(title=f"layer {layer}, head {head}\n(top head for: {habit})", xlabel="key (read from)",
           ylabel="query (reading)")
fig.colorbar(image, ax=list(axes), shrink=0.7, label="attention probability")
fig.suptitle(f"Attention probabilities recomputed from MiniLM's weights: {sentence!r}", fontsize=9)
plt.show()

# %% [markdown]
# Each row is one token's distribution over the sentence. A head that follows the word order draws a
# diagonal just below or above the main one; a head that sends almost everything to `[CLS]` draws one
# bright column (a pattern often read as a head "doing nothing" when it has nothing useful to read); a
# broad head spreads its colour over the row (the sentences above the table say which habits this run
# found, and how strong). These are habits measured on a handful of snippets, not a full explanation of what the
# model computes: a head's output also goes through its value vectors and the layers above.
#
# ## 8. What attention costs
#
# Every query meets every key, so one head computes an $n \times n$ score matrix: time and memory grow
# like $n^2$ with the sequence length $n$, while the linear projections grow like $n$. Measure one
# MiniLM-sized layer (hidden 384, 12 heads) on random inputs of growing length. Four precautions
# keep the timings honest on a busy machine: one CPU thread (with two, a short computation mostly
# measures how long one thread waits for the other); CPU time of our process rather than wall-clock
# time (on a CPU; time other programs take from us does not count); the median of several rounds; and
# rounds that each time every length once (so a load that comes and goes hits all lengths alike).
# Memory is the peak that the attention step allocates, counted tensor by tensor
# (`attention.TensorMemoryMeter`).

# %%
threads_before = torch.get_num_threads()
torch.set_num_threads(1)
try:
    timing = attention.attention_costs(settings["timing_n"], dim=config.hidden_size, n_heads=config.num_attention_heads,
                                       rounds=settings["rounds"], device=lesson.device, seed=lesson.seed)
finally:
    torch.set_num_threads(threads_before)
timing_table = pd.DataFrame(timing)
# local exponent between neighbouring lengths: log(t2 / t1) / log(n2 / n1)
timing_table["local_exponent"] = np.log(timing_table["attention_s"]).diff() / np.log(timing_table["n"]).diff()
large = timing_table[timing_table["n"] >= 1024]  # where the n×n tensors are far bigger than the CPU caches
time_exponent, time_coef = attention.fit_power_law(large["n"], large["attention_s"])
projection_exponent, _ = attention.fit_power_law(large["n"], large["projections_s"])
memory_exponent, _ = attention.fit_power_law(timing_table["n"], timing_table["peak_mib"])
print(f"fitted exponents for n ≥ 1024: attention time ~ n^{time_exponent:.2f}, "
      f"projections ~ n^{projection_exponent:.2f}; "
      f"attention peak memory (all n) ~ n^{memory_exponent:.2f}")
slower = timing_table[timing_table["attention_s"] > timing_table["projections_s"]]["n"]
print("shortest measured length where attention takes longer than the projections:",
      int(slower.min()) if len(slower) else "none measured")
display(Markdown("\n".join("- " + text for text in [
    claims.claim("attention_time_quadratic", 1.5 <= time_exponent <= 2.5,
                 f"Fitted over n ≥ 1024, attention time grew like n^{time_exponent:.2f}, close to the n² of the "
                 f"theory (the lesson accepts 1.5 to 2.5).",
                 f"Fitted over n ≥ 1024, attention time grew like n^{time_exponent:.2f}: outside 1.5 to 2.5, so "
                 "this machine's timings do not show the n² clearly."),
    claims.claim("projections_grow_slower", projection_exponent < time_exponent,
                 f"The projections grew more slowly, like n^{projection_exponent:.2f}.",
                 f"The projections did NOT grow more slowly than attention here (n^{projection_exponent:.2f} "
                 f"vs n^{time_exponent:.2f})."),
    claims.claim("attention_overtakes_projections", len(slower) > 0,
                 f"The shortest measured length at which attention took longer than the projections was "
                 f"n = {int(slower.min()) if len(slower) else 0}.",
                 "Attention never took longer than the projections at the measured lengths."),
    claims.claim("attention_memory_quadratic", 1.8 <= memory_exponent <= 2.2,
                 f"Attention's peak memory grew like n^{memory_exponent:.2f}, close to n².",
                 f"Attention's peak memory grew like n^{memory_exponent:.2f}, outside 1.8 to 2.2."),
])))
timing_table.round(5)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
n_fit = large["n"].to_numpy(dtype=float)
axes[0].plot(timing_table["n"], timing_table["attention_s"] * 1e3, "o-", label="attention (scores, softmax, mix)")
axes[0].plot(timing_table["n"], timing_table["projections_s"] * 1e3, "s-", label="q, k, v, out projections")
axes[0].plot(n_fit, time_coef * n_fit**time_exponent * 1e3, "k--", linewidth=2,
             label=f"fit ∝ n^{time_exponent:.2f} (n ≥ 1024)")
axes[0].set(xscale="log", yscale="log", title="Time of one layer (median of rounds)", xlabel="sequence length n",
            ylabel="milliseconds (CPU time on a CPU)")
axes[1].plot(timing_table["n"], timing_table["peak_mib"], "o-", label="peak memory of attention")
axes[1].plot(timing_table["n"], timing_table["score_matrix_mib"], "k--", linewidth=1,
             label="one (12, n, n) float32 tensor")
axes[1].set(xscale="log", yscale="log", title="Memory of one layer's attention", xlabel="sequence length n",
            ylabel="MiB")
for ax in axes:
    ax.legend(fontsize="small")
fig.tight_layout()
plt.show()

# %% [markdown]
# On log-log axes a power law is a straight line whose slope is the exponent. Reading the table's
# `local_exponent` column from top to bottom: at short lengths fixed overheads can hide the $n^2$ (slopes
# below 2); in the middle the slope can *exceed* 2, because the $n \times n$ tensors stop fitting in the
# CPU's caches and every element becomes slower to reach; once they are far larger than the caches, each
# doubling of $n$ should cost about four times as much, which is why the fit uses $n \ge 1024$. The
# projections' cost grows about linearly (plus overheads), so for short sentences they can dominate and
# for long inputs the $n^2$ part must. Memory should follow $n^2$: at its peak the step holds about two $n
# \times n$ tensors per head (the scaled scores and the probabilities). The sentences above the table say
# what this run measured. This is why BERT-style models cap their inputs (512 tokens for MiniLM), and why
# fused kernels (PyTorch's `scaled_dot_product_attention`, FlashAttention) compute the same result in
# tiles without ever storing the full matrix.
#
# ## 9. Exercises
#
# Each exercise has an instant check against the course's reference answers (`transfer_utils.solutions`),
# on several inputs, edge cases included. In the student version (`python -m transfer_utils student`) the
# solutions are removed, and each check says "not attempted" until you fill in its function.
#
# **Exercise 1 (warm-up).** Write attention without a mask: return softmax(q·kᵀ/√d_k)·v for tensors of
# shape (..., length, d). It is the one formula every layer of the BERTs you will fine-tune computes, so
# once you have written it, every later text lesson is made of parts you know. Besides the example of
# section 2 and a batch of heads, the check tries a single key (every query must return that key's
# value), keys that are all equal (every query gets the mean of the values), more queries than keys, and
# scores in the thousands (take the softmax with `softmax`: an `exp` written by hand overflows there).

# %%
# NBVAL_CHECK_OUTPUT
from transfer_utils.core.exercises import check_function, check_prediction, direction
from transfer_utils.solutions import lesson06 as solutions


def my_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-1) @ v
    ### END SOLUTION


exercise_generator = torch.Generator().manual_seed(0)
draw = lambda *shape: torch.randn(*shape, generator=exercise_generator)  # noqa: E731
attention_cases = [
    (Q, K, V),  # section 2's three tokens
    (draw(2, 3, 5, 8), draw(2, 3, 5, 8), draw(2, 3, 5, 8)),  # a batch of 2 sentences × 3 heads
    (draw(4, 8), draw(1, 8), draw(1, 3)),  # one key: its weight is 1 for every query
    (draw(3, 4), torch.ones(5, 4), torch.arange(10.0).view(5, 2)),  # equal keys: uniform weights
    (30 * draw(2, 6, 16), 30 * draw(2, 6, 16), draw(2, 6, 4)),  # huge scores: a saturated softmax
]
check_function(my_attention, solutions.attention, attention_cases, name="exercise 1 (attention)", atol=1e-5)

# %% [markdown]
# **Exercise 2 (warm-up).** Turn a tokenizer's `attention_mask` (batch, length; 1 = token, 0 = padding)
# into a boolean mask of shape (batch, 1, 1, length) that is True where a key may be read. Every batch
# you fine-tune on is padded, and section 4 showed what a missing mask does to the vectors. The check
# includes a batch without any padding and a sentence of a single token.

# %%
# NBVAL_CHECK_OUTPUT
def my_padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    return (attention_mask == 1).unsqueeze(1).unsqueeze(2)
    ### END SOLUTION


mask_cases = [(torch.tensor([[1, 1, 0], [1, 1, 1]]),), (torch.tensor([[1, 0, 0, 0]]),),
              (torch.ones(3, 5, dtype=torch.long),), (torch.tensor([[1]]),)]
check_function(my_padding_mask, attention.padding_mask, mask_cases, name="exercise 2 (padding mask)")

# %% [markdown]
# **Exercise 3 (apply).** Split (batch, length, heads·d) features into heads: return (batch, heads,
# length, d), head *h* holding features *h·d* to *(h+1)·d − 1*. Reading (or pruning, or adapting) single
# heads of a pretrained model starts with this reshape. The check includes one head (nothing to split)
# and heads of a single feature each.

# %%
# NBVAL_CHECK_OUTPUT
def my_split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    batch, length, width = x.shape
    return x.reshape(batch, length, n_heads, width // n_heads).permute(0, 2, 1, 3)
    ### END SOLUTION


split_cases = [(torch.arange(24.0).view(1, 2, 12), 3), (draw(2, 5, 384), 12), (draw(1, 1, 8), 1), (draw(2, 3, 6), 6)]
check_function(my_split_heads, attention.split_heads, split_cases, name="exercise 3 (split heads)")

# %% [markdown]
# **Exercise 4 (apply).** How many bytes do the attention probabilities of *all* layers and heads take
# for one sequence of `n` tokens in float32 (4 bytes per number), in a model of `n_layers` layers with
# `n_heads` heads each? The check tries this model at its 512-token limit
# (`config.num_hidden_layers`, `config.num_attention_heads`), BERT-base (12 layers × 12 heads), a large
# model at 4,096 tokens, and the edge cases of one and of zero tokens. Fine-tuning keeps these maps for
# the backward pass, for every sequence of a batch: this is the memory that decides how long an input and
# how large a batch fit on your machine.

# %%
# NBVAL_CHECK_OUTPUT
def my_attention_bytes(n: int, n_layers: int, n_heads: int) -> int:
    ### BEGIN SOLUTION
    return n_layers * n_heads * n * n * 4
    ### END SOLUTION


memory_cases = [(512, config.num_hidden_layers, config.num_attention_heads), (512, 12, 12), (4096, 24, 16),
                (1, 1, 1), (0, 6, 12)]
check_function(my_attention_bytes, solutions.attention_bytes, memory_cases,
               name="exercise 4 (memory of the attention maps)")

# %% [markdown]
# **Exercise 5 (experiment).** Section 3 drew query and key entries of variance 1, and the 1/√d_k
# brought the scores back to variance 1. Pretrained vectors need not be that tame: a fine-tuned layer
# can learn larger queries and keys, and vectors that skip the normalisation are larger too. Keep the
# 1/√d_k, but give every query and key entry a standard deviation of 2 instead of 1. Predict before you
# run: will the softmax entropy over the `n_keys` keys at $d_k$ = `d_k` be "higher", "lower" or "about the
# same" as with entries of standard deviation 1? Put your prediction in `my_prediction`, then run the cell
# below it, which redraws section 3's vectors at `d_k` both ways.

# %%
def my_prediction() -> str:
    ### BEGIN SOLUTION
    return "lower"
    ### END SOLUTION


# %%
def scaled_entropy(std: float) -> float:
    """Mean softmax entropy at d_k over n_keys keys, query and key entries of standard deviation ``std``."""
    g = torch.Generator().manual_seed(lesson.seed)
    q = std * torch.randn(settings["pairs"] // n_keys, 1, d_k, generator=g)
    k = std * torch.randn(settings["pairs"] // n_keys, n_keys, d_k, generator=g)
    p = ((q @ k.transpose(-2, -1)).squeeze(1) / math.sqrt(d_k)).softmax(dim=-1)
    return float(attention.softmax_entropy(p).mean())


before, after = scaled_entropy(1.0), scaled_entropy(2.0)
outcome = direction(before, after, margin=0.2)
check_prediction(my_prediction, outcome, name="exercise 5 (larger queries and keys)",
                 choices=["higher", "lower", "about the same"],
                 evidence=f"entropy {before:.3f} → {after:.3f} nats at d_k = {d_k} (uniform {math.log(n_keys):.3f}): "
                          "the 1/√d_k corrects for the number of terms in q·k, not for their size")

# %% [markdown]
# ## 10. Results
#
# The key numbers go to the metrics file and the lesson's claims are asserted, so a broken lesson
# cannot pass silently.

# %%
lesson.save_metrics({
    "sdpa_max_abs_diff": sdpa_max_abs_diff,
    "mha_max_abs_diff": mha_max_abs_diff,
    "bert_attention_max_abs_diff": bert_attention_max_abs_diff,
    "bert_layers_checked": len(per_layer),
    "bert_heads_per_layer": config.num_attention_heads,
    "d_k": d_k,
    "n_keys": n_keys,
    "scaled_softmax_entropy": scaled_softmax_entropy,
    "unscaled_softmax_entropy": unscaled_softmax_entropy,
    "variance_ratio_min": float(variance_ratio.min()),
    "variance_ratio_max": float(variance_ratio.max()),
    "padding_cosine_with_mask": cos_masked,
    "padding_cosine_without_mask": cos_unmasked,
    "padding_attention_share_without_mask": pad_share,
    "time_exponent": time_exponent,
    "projection_exponent": projection_exponent,
    "memory_exponent": memory_exponent,
    "timing": timing,  # one flat dict per sequence length
    **claims.as_metrics(),
})
assert sdpa_max_abs_diff < 1e-5 and mha_max_abs_diff < 1e-5, "hand-written attention must match PyTorch's"
assert bert_attention_max_abs_diff <= 1e-5, "every head of the real BERT must be reproduced to 1e-5"
assert 0.85 < variance_ratio.min() and variance_ratio.max() < 1.15, "Var(q·k) should be close to d_k"
assert scaled_softmax_entropy > unscaled_softmax_entropy + 1.0, "without 1/√d_k the softmax should saturate"
assert cos_masked > 0.99999 and cos_unmasked < cos_masked, "the mask must make padding harmless"
assert max(pad_share) > 0.05, "without a mask, real tokens should put visible weight on [PAD]"
assert 1.5 <= time_exponent <= 2.5, f"attention time should grow roughly like n² (fitted {time_exponent:.2f})"
assert 1.8 <= memory_exponent <= 2.2, f"attention memory should grow like n² (fitted {memory_exponent:.2f})"

# %% [markdown]
# ## Summary and what next
#
# * Attention is three steps: compare every query with every key (dot products), turn each row of
#   scores into probabilities (softmax), and mix the values with those probabilities.
# * The 1/√d_k is there to keep the scores at unit variance whatever the head size; a padding mask
#   gives `[PAD]` keys zero weight; multi-head attention is a reshape, one attention per head, and a
#   reshape back. Every head compares every query with every key, so its cost grows with the square of
#   the length, which is why inputs are capped and why fused kernels exist.

# %%
display(Markdown(claims.markdown("What this run showed")))

# %% [markdown]
# **Next:** [07 · BERT fine-tuning](07_bert_fine_tuning.ipynb) trains such a model end to end on a real
# sentiment task, with the pitfalls of the source articles fixed.
