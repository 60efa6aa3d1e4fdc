"""What the smoke run of 09_distillation_multitask_relations must show."""


def check(m: dict) -> None:
    constant = m["constant_acc"]
    n_seeds = len(m["seeds"])
    for key in ("teacher_acc", "student_scratch_acc", "student_kd_acc", "multitask_acc", "singletask_acc",
                "multitask_related_acc"):
        # every model leaves the majority class (a stuck baseline would be a bug, not evidence)
        assert m[key] > constant + 0.01, f"{key} {m[key]:.3f} is near the constant predictor {constant:.3f}"
    assert m["teacher_acc"] > constant + 0.08
    for key in ("student_scratch_acc", "student_kd_acc", "student_rkd_acc", "multitask_acc", "singletask_acc"):
        assert len(m[f"{key}_per_seed"]) == n_seeds
    # the teacher (pretrained MiniLM + head) knows more than the student trained on the same few labels
    assert m["teacher_acc"] > m["student_scratch_acc"] + 0.02
    # with an unlabelled transfer set, distillation does not lose to training on the gold labels alone
    assert m["student_kd_acc"] > m["student_scratch_acc"]
    assert m["size_ratio"] >= 10 and m["speedup"] > 3
    # closed forms against autograd, and the T² factor against the 1/T² fall of the KL gradient
    assert m["bce_grad_max_abs_diff"] < 1e-12 and m["kd_grad_max_abs_diff"] < 1e-6
    assert abs(m["kl_grad_slope"] + 2) < 0.15 and abs(m["t2_kl_grad_slope"]) < 0.15
    assert m["topic_alone_acc"] > m["topic_constant_acc"] + 0.3
