"""What the smoke run of 08_resnet_image_transfer must show."""


def check(m: dict) -> None:
    # part A: an ImageNet start beats the same network from random weights with 10 labels per class
    assert max(m["acc_feature_extractor"], m["acc_finetune"]) > m["acc_scratch"] + 0.05
    assert m["acc_finetune"] > m["acc_scratch"] + 0.03
    assert 0.5 < m["acc_feature_extractor"] < 1.0 and 0.5 < m["acc_raw_pixels"] < 1.0
    # seconds are measured, not asserted in order: encoding the test set and a few dozen fine-tuning steps cost
    # about the same here, and which is faster flipped between a quiet and a loaded machine (the lesson's
    # claim `finetune_costs_more_seconds` says which it was in its run)
    assert m["seconds_feature_extractor"] > 0 and m["seconds_finetune"] > 0
    assert len(m["photo_top1"]) == 8 and all(isinstance(name, str) for name in m["photo_top1"])
    # part B: transferred blocks beat scratch; freezing every block is the worst transfer
    frozen = m["acc_by_frozen_blocks"]
    assert len(frozen) == 4 and len(m["acc_by_frozen_blocks_std"]) == 4
    best_transfer = max([m["acc_finetune_b"]] + frozen[:3])
    assert best_transfer > m["acc_scratch_b"] + 0.02
    assert frozen[3] < best_transfer - 0.03
    assert m["source_accuracy"] > 0.8
    assert len(m["runs_b"]) == 6 * m["seeds_b"]
