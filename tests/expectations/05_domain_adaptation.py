"""What the smoke run of 05_domain_adaptation must show."""

import pytest

SHIFTS = ("blend", "digits")
METHODS = ("source_only", "dann", "deep_coral", "oracle")


def check(m: dict) -> None:
    n_seeds = len(m["seeds"])
    for shift in SHIFTS:
        for method in METHODS:
            assert 0.0 <= m[f"{shift}_{method}"] <= 1.0
            assert len(m[f"{shift}_{method}_per_seed"]) == n_seeds
        so, dann, oracle = (m[f"{shift}_{k}"] for k in ("source_only", "dann", "oracle"))
        assert oracle > so + 0.05, f"{shift}: the target-trained oracle must beat source-only"
        # gap closed is averaged per seed; with one seed (smoke) it is exactly the formula on the means
        if n_seeds == 1:
            assert m[f"{shift}_gap_closed_dann"] == pytest.approx((dann - so) / (oracle - so))
    # the preprocessing claim: optdigits-style conversion transfers, a plain resize does not
    assert m["probe_target_acc_optdigits"] > m["probe_target_acc_naive"] + 0.2
    # the photo shift is where adversarial adaptation helps, even in a short smoke run
    assert m["blend_dann"] > m["blend_source_only"] + 0.05
    assert m["blend_gap_closed_dann"] > 0.2
    assert m["blend_domain_probe_dann"] < m["blend_domain_probe_source_only"]
    assert 0.0 <= m["digits_source_only_2x_steps"] <= 1.0
