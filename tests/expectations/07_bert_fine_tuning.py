"""What the smoke run of 07_bert_fine_tuning must show."""


def check(m: dict) -> None:
    # a short fine-tuning run already beats always answering the majority class clearly
    assert m["test_accuracy"] > m["majority_accuracy"] + 0.05
    # F1 of 'fresh', the larger class, is not immune to imbalance: always answering 'fresh' scores constant_f1
    assert 0.5 < m["test_f1"] <= 1.0 and m["test_f1"] > m["constant_f1"] + 0.02
    assert m["frozen_test_accuracy"] > m["majority_accuracy"]
    assert 0.4 < m["trainer_test_accuracy"] <= 1.0 and 0.4 < m["course_loop_test_accuracy"] <= 1.0
    assert m["reload_max_abs_logit_diff"] <= 1e-6
    assert m["grad_check_max_abs_diff"] < 1e-7
    assert m["train_seconds"] > 0 and m["trainer_seconds"] > 0
    assert m["train_steps"] == m["history"][-1]["steps"] > 0
