"""What the smoke run of 03_feature_based must show."""


def check(m: dict) -> None:
    for shift in ("text", "image"):
        assert m[f"{shift}_mmd_after"] < 0.5 * m[f"{shift}_mmd_before"]  # CORAL aligns the features
        assert m[f"{shift}_mmd_tca"] >= 0 and m[f"{shift}_mmd_tca_mu0"] >= 0
        assert m[f"{shift}_target_acc_oracle"] > m[f"{shift}_target_acc_source_only"]
        assert m[f"{shift}_target_acc_source_only"] > 0.5
        for method in ("coral", "sa", "tca"):
            assert 0.05 < m[f"{shift}_target_acc_{method}"] <= 1.0
    assert m["text_target_positive_share"] < m["text_source_positive_share"] - 0.15
    assert m["text_target_acc_prior_true"] >= m["text_target_acc_source_only"] - 0.01
