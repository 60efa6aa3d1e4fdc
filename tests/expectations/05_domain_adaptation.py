"""What the smoke run of 05_domain_adaptation must show."""

SHIFTS = ("blend", "digits")
METHODS = ("source_only", "dann", "deep_coral", "oracle")


def check(m: dict) -> None:
    n_seeds = len(m["seeds"])
    for shift in SHIFTS:
        for method in METHODS:
            # every network learns the digits: well above the 10-class chance of 0.1
            assert m[f"{shift}_{method}"] > 0.2, f"{shift} {method}: near chance"
            assert len(m[f"{shift}_{method}_per_seed"]) == n_seeds
        so, oracle = m[f"{shift}_source_only"], m[f"{shift}_oracle"]
        assert oracle > so + 0.05, f"{shift}: the target-trained oracle must beat source-only"
        # no adaptation beats training on the target's own labels (beyond seed noise)
        assert max(m[f"{shift}_dann"], m[f"{shift}_deep_coral"]) < oracle + 0.02
    # the preprocessing claim: optdigits-style conversion transfers, a plain resize does not
    assert m["probe_target_acc_optdigits"] > m["probe_target_acc_naive"] + 0.2
    # the photo shift is where adversarial adaptation helps, even in a short smoke run
    assert m["blend_dann"] > m["blend_source_only"] + 0.05
    assert m["blend_gap_closed_dann"] > 0.2
    assert m["blend_domain_probe_dann"] < m["blend_domain_probe_source_only"]
    # twice the training steps do not turn source-only into the target-trained oracle
    assert m["digits_source_only_2x_steps"] < m["digits_oracle"] - 0.05
