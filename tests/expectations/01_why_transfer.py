"""What the smoke run of 01_why_transfer must show."""

METHODS = {"from scratch (bag of embeddings)", "TF-IDF + logistic regression",
           "frozen encoder + logistic regression", "fine-tuning"}


def _mean(values: list[float]) -> float:
    assert values, "no rows for this method and size"
    return sum(values) / len(values)


def check(m: dict) -> None:
    curve = m["curve"]
    assert {r["method"] for r in curve} == METHODS
    sizes = sorted({r["n"] for r in curve})
    seeds = {r["seed"] for r in curve}
    assert {64, 256} <= set(sizes) and len(seeds) >= 2
    for method in ("TF-IDF + logistic regression", "frozen encoder + logistic regression",
                   "from scratch (bag of embeddings)"):
        assert len([r for r in curve if r["method"] == method]) == len(sizes) * len(seeds)
    # fine-tuning runs on the profile's `finetune_sizes` only (smoke 16 and 64, default 64 and 256): two
    # of the curve's sizes, every seed
    rows = [r for r in curve if r["method"] == "fine-tuning"]
    tuned_sizes = {r["n"] for r in rows}
    assert len(tuned_sizes) >= 2 and tuned_sizes <= set(sizes) and 64 in tuned_sizes, tuned_sizes
    assert len(rows) == len(tuned_sizes) * len(seeds)
    mean = lambda method, n: _mean([r["accuracy"] for r in curve if r["method"] == method and r["n"] == n])  # noqa: E731
    # frozen features beat the majority-class baseline at every size, even 16 labels
    for n in sizes:
        assert mean("frozen encoder + logistic regression", n) > m["majority_accuracy"] + 0.02, n
    # more labels help the bag-of-words baseline (the curve is a curve, not noise)
    assert mean("TF-IDF + logistic regression", sizes[-1]) > mean("TF-IDF + logistic regression", sizes[0]) + 0.03
    # transfer beats both no-transfer baselines with few labels
    assert m["gain_at_64"] > 0 and m["gain_at_256"] > 0
    # the from-scratch network is a baseline that learns: more labels, higher accuracy
    assert mean("from scratch (bag of embeddings)", sizes[-1]) > mean("from scratch (bag of embeddings)", sizes[0])
    assert m["source_only_accuracy"] < max(r["accuracy"] for r in m["lambda_curve"])
