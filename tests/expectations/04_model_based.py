"""What the smoke run of 04_model_based must show."""

STRATEGIES = ["head only", "gradual unfreezing", "full fine-tuning", "layer-wise rates", "weight decay", "L2-SP"]


def check(m: dict) -> None:
    rows = {r["strategy"]: r for r in m["strategies"]}
    assert list(rows) == STRATEGIES
    for r in rows.values():
        # every strategy learns the 5 target classes (chance 0.2), and training on them cannot teach the
        # source task: its accuracy stays at or below the pretrained model's (up to evaluation noise)
        assert r["target_acc"] > 0.4, f"{r['strategy']}: near chance"
        assert r["source_acc_after"] <= m["source_acc_before"] + 0.02
        assert r["seconds"] > 0
    # a frozen body (and its frozen batch-norm statistics) forgets nothing; fine-tuning forgets a lot
    # (the row is a mean over seeds: equal per-seed accuracies average to the same value up to round-off, far
    # below the 1/2000 that one test image moves it)
    assert abs(rows["head only"]["source_acc_after"] - m["source_acc_before"]) < 1e-9
    assert rows["head only"]["trainable_params"] < 1000 < rows["full fine-tuning"]["trainable_params"]
    assert rows["full fine-tuning"]["source_acc_after"] < m["source_acc_before"] - 0.1
    assert max(rows[n]["target_acc"] for n in STRATEGIES[1:]) > rows["head only"]["target_acc"] + 0.03
    assert rows["L2-SP"]["distance_from_pretrained"] < rows["weight decay"]["distance_from_pretrained"]
    # the update rule by hand matches torch's SGD and AdamW
    assert m["sgd_update_max_abs_diff"] < 1e-6 and m["adamw_update_max_abs_diff"] < 1e-6
    # one shared encoder keeps the source task with fewer parameters than two models
    assert m["joint_source_acc"] > rows["full fine-tuning"]["source_acc_after"] + 0.1
    assert m["shared_params"] < m["separate_params"]
    assert len(m["recalibrated_source_acc"]) == len(STRATEGIES)
