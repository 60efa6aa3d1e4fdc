"""What the smoke run of 02_instance_based must show."""


def check(m: dict) -> None:
    assert m["n_seeds"] >= 3 and len(m["runs"]) == m["n_seeds"]
    best = max(m["target_acc_classifier"], m["target_acc_kmm"], m["target_acc_kliep"])
    assert best > m["target_acc_unweighted"] + 0.02  # weighting helps the misspecified model
    assert m["target_acc_true_weights"] > m["target_acc_unweighted"] + 0.03
    assert abs(m["svm_true_weights"] - m["svm_unweighted"]) < 0.03  # ... and barely moves a flexible one
    assert m["toy_linear_weighted"] > m["toy_linear_unweighted"] + 0.3
    assert abs(m["toy_quadratic_weighted"] - m["toy_quadratic_unweighted"]) < 0.05
    assert 0 < m["ess_kmm"] < 1
    assert m["target_acc_tradaboost"] > m["target_acc_labelled_target_only"] + 0.05
    for key in ("target_acc_unweighted", "target_acc_classifier", "target_acc_kmm", "target_acc_kliep",
                "target_acc_tradaboost"):
        assert 0.1 < m[key] <= 1.0
