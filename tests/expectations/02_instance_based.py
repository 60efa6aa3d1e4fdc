"""What the smoke run of 02_instance_based must show."""


def check(m: dict) -> None:
    assert m["n_seeds"] >= 3 and len(m["runs"]) == m["n_seeds"]
    # the weighting named in advance (domain classifier) helps the misspecified model; none is picked on test
    assert m["target_acc_classifier"] > m["target_acc_unweighted"] + 0.02
    assert m["target_acc_true_weights"] > m["target_acc_unweighted"] + 0.03
    assert abs(m["svm_true_weights"] - m["svm_unweighted"]) < 0.03  # ... and barely moves a flexible one
    assert m["toy_linear_weighted"] > m["toy_linear_unweighted"] + 0.3
    assert abs(m["toy_quadratic_weighted"] - m["toy_quadratic_unweighted"]) < 0.05
    # weighting costs data (well under half the source), but KMM's bound B keeps it from collapsing
    assert 0.02 < m["ess_kmm"] < 0.5
    assert m["target_acc_tradaboost"] > m["target_acc_labelled_target_only"] + 0.05
    # every estimated weighting helps or at worst ties unweighted training, and none beats the model
    # trained on the target's own labels (the ceiling; up to fold noise)
    for key in ("target_acc_classifier", "target_acc_kmm", "target_acc_kliep", "target_acc_true_weights"):
        assert m["target_acc_unweighted"] - 0.02 < m[key] < m["target_acc_target_trained"] + 0.03, key
