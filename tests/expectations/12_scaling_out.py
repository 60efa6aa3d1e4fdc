"""What the smoke run of 12_scaling_out must show."""


def check(m: dict) -> None:
    # the launched run really had two processes, and the MULTI_CPU config really started only one
    assert m["world_size"] == 2 and m["distinct_processes"] == 2
    assert m["multi_cpu_config_world_size"] == 1
    # without dropout, two processes reproduce one process's losses (float rounding only)
    assert m["exact_steps"] >= 3 and m["exact_max_loss_diff"] < 1e-3
    # accumulated micro-batches take the large batch's step: far below the size of the step itself
    assert m["accumulation_max_weight_diff"] < 1e-3 * m["accumulation_step_size"]
    # stopped and resumed in new processes = uninterrupted
    assert m["resume_world_size"] == 2 and m["resume_max_weight_diff"] < 1e-5
    # with dropout, the runs' accuracies differ by less than a short run's noise
    assert abs(m["two_process_mean_accuracy"] - m["one_process_mean_accuracy"]) < 0.15
    assert m["first_steps_loss_gap"] < 0.2
    # bf16 was measured (its speed against float32 and its accuracy, within a short run's noise)
    assert m["bf16_seconds_per_step"] > 0 and abs(m["bf16_mean_accuracy"] - m["one_process_mean_accuracy"]) < 0.15
    # the all-reduce of the gradient was timed and is not free
    assert m["allreduce_seconds"] > 0 and m["gradient_megabytes"] > 50
    claims = {c["claim"]: c["holds"] for c in m["claims"]}
    assert claims["two_processes_started"] and claims["same_losses_without_dropout"]
    assert claims["resume_matches_uninterrupted"] and claims["accumulation_equals_larger_batch"]
