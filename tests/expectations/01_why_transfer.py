"""What the smoke run of 01_why_transfer must show."""

METHODS = {"from scratch (random init)", "TF-IDF + logistic regression",
           "frozen encoder + logistic regression", "fine-tuning"}


def check(m: dict) -> None:
    curve = m["curve"]
    assert {r["method"] for r in curve} == METHODS
    sizes = sorted({r["n"] for r in curve})
    seeds = {r["seed"] for r in curve}
    assert {64, 256} <= set(sizes) and len(seeds) >= 2
    for method in ("TF-IDF + logistic regression", "frozen encoder + logistic regression"):
        assert len([r for r in curve if r["method"] == method]) == len(sizes) * len(seeds)
    for method in ("from scratch (random init)", "fine-tuning"):  # smoke trains the networks on small sets only
        rows = [r for r in curve if r["method"] == method]
        assert {16, 64} <= {r["n"] for r in rows} and len(rows) >= 2
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in curve)
    # transfer beats both no-transfer baselines with few labels
    assert m["gain_at_64"] > 0 and m["gain_at_256"] > 0
    # a random-init transformer stays near the majority class
    assert m["scratch_mean_accuracy"] < m["majority_accuracy"] + 0.08
    assert m["source_only_accuracy"] < max(r["accuracy"] for r in m["lambda_curve"])
