"""What the smoke run of 11_parameter_efficient_fine_tuning must show (its few steps leave accuracy near the
constant predictor, so the checks are on the mechanics, each against an independent reference)."""


def check(m: dict) -> None:
    # LoRA on query/value of MiniLM trains a small share, far below full fine-tuning's count
    assert m["lora_share"] < 0.05 and m["lora_trainable"] * 20 < m["full_trainable"]
    assert m["head_trainable"] < m["ia3_trainable"] < m["lora_trainable"]
    # the hand-written layer against peft's, peft's merge against the logits before merging and the hand formula
    assert m["hand_lora_max_abs_diff"] < 1e-5
    assert m["merge_max_abs_logit_diff"] < 1e-4 and m["merge_vs_hand_max_abs_diff"] < 1e-6
    # the saved adapter is a small fraction of a full checkpoint and reloads to the same logits
    assert m["adapter_bytes"] * 50 < m["full_model_bytes"] and m["reload_max_abs_logit_diff"] < 1e-5
    # full fine-tuning holds gradients and AdamW state for every weight: more memory than the head alone
    assert m["full_peak_mb"] > m["head_peak_mb"] + 100
