"""Text fine-tuning pieces: unpadded dataset, padding collator, decay groups, schedule, predict, reload."""

import math

import numpy as np
import pytest
import torch

from conftest import build_tiny_bert
from transfer_utils.models import pretrained
from transfer_utils import fine_tuning as tc
from transfer_utils.models.pretrained import load_text_classifier

TOY_TEXTS = ["the film is good", "the film is bad", "a good movie .", "a bad movie .", "good", "bad",
             "the movie is good .", "the movie is bad .", "a good film", "a bad film", "good good", "bad bad"]
TOY_LABELS = [1, 0] * 6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tokenizer and a randomly initialised 2-layer BERT classifier saved as a local HF folder."""
    folder = build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))
    return str(folder), *load_text_classifier(str(folder), num_labels=2)


@pytest.fixture(scope="module")
def minilm():
    return load_text_classifier("minilm", num_labels=2)


def test_dataset_keeps_texts_unpadded(tiny):
    _, tokenizer, _ = tiny
    data = tc.TokenizedTexts(TOY_TEXTS, TOY_LABELS, tokenizer)
    assert len(data) == 12 and data.lengths[4] == 3 and data.lengths[0] == 6  # [CLS] ... [SEP]
    item = data[0]
    assert set(item) == {"input_ids", "attention_mask", "labels"} and item["labels"] == 1
    assert isinstance(item["input_ids"], list) and item["attention_mask"] == [1] * 6
    assert "labels" not in tc.TokenizedTexts(TOY_TEXTS, None, tokenizer)[0]


def test_dataset_rejects_bad_input(tiny):
    _, tokenizer, _ = tiny
    with pytest.raises(ValueError, match="one label per text"):
        tc.TokenizedTexts(TOY_TEXTS, TOY_LABELS[:3], tokenizer)
    with pytest.raises(TypeError, match="strings"):
        tc.TokenizedTexts([[1, 2, 3]], [0], tokenizer)


def test_collator_pads_each_batch_to_its_longest_text(tiny):
    _, tokenizer, _ = tiny
    data = tc.TokenizedTexts(TOY_TEXTS, TOY_LABELS, tokenizer)
    batch = tc.padding_collator(tokenizer)([data[i] for i in (0, 4, 5)])
    assert batch["input_ids"].shape == (3, 6) and batch["labels"].tolist() == [1, 1, 0]
    assert batch["attention_mask"].sum(dim=1).tolist() == [6, 3, 3]
    assert (batch["input_ids"][1, 3:] == tokenizer.pad_token_id).all()
    # the mistake the collator avoids: tensors made per item get an extra dimension when stacked
    wrong = torch.stack([tokenizer(TOY_TEXTS[i], padding="max_length", max_length=8,
                                   return_tensors="pt")["input_ids"] for i in range(3)])
    assert wrong.shape == (3, 1, 8)


def test_length_grouped_loader_pads_less_and_is_seeded(minilm):
    from transfer_utils.data import datasets

    tokenizer, _ = minilm
    part = datasets.sample_n(datasets.load_rotten_tomatoes().train, 1024, seed=0)
    data = tc.TokenizedTexts(part.x, part.y, tokenizer)

    def padded_tokens(loader):
        return sum(b["input_ids"].numel() for b in loader)

    grouped = tc.text_loader(data, tokenizer, 32, shuffle=True, seed=1)
    plain = tc.text_loader(data, tokenizer, 32, shuffle=True, group_by_length=False, seed=1)
    assert padded_tokens(grouped) < 0.8 * padded_tokens(plain)
    first = [b["input_ids"].shape for b in tc.text_loader(data, tokenizer, 32, shuffle=True, seed=1)]
    again = [b["input_ids"].shape for b in tc.text_loader(data, tokenizer, 32, shuffle=True, seed=1)]
    other = [b["input_ids"].shape for b in tc.text_loader(data, tokenizer, 32, shuffle=True, seed=2)]
    assert first == again and first != other
    seen = sorted(i for b in tc.text_loader(data, tokenizer, 100, shuffle=False) for i in b["labels"].tolist())
    assert sum(seen) == int(part.y.sum()) and len(seen) == 1024


def test_decay_groups_match_the_hf_trainer(minilm, tmp_path):
    from transformers import Trainer, TrainingArguments

    _, model = minilm
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    expected = set(Trainer(model=model, args=args).get_decay_parameter_names(model))
    ours = set(tc.decayed_parameter_names(model))
    assert ours == expected
    no_decay = {n for n, _ in model.named_parameters()} - ours
    assert "bert.encoder.layer.0.attention.output.LayerNorm.weight" in no_decay
    assert "classifier.bias" in no_decay and "classifier.weight" in ours
    groups = tc.decay_parameter_groups(model, 0.01)
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_decay_groups_skip_frozen_parameters(tiny):
    _, _, model = tiny
    for p in model.bert.parameters():
        p.requires_grad_(False)
    try:
        groups = tc.decay_parameter_groups(model, 0.01)
        assert sum(len(g["params"]) for g in groups) == 2  # classifier weight and bias
    finally:
        for p in model.bert.parameters():
            p.requires_grad_(True)


def test_schedule_warms_up_then_decays_to_zero():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([weight], lr=1e-3)
    scheduler = tc.warmup_linear_schedule(optimizer, warmup_steps=10, total_steps=50)
    rates = []
    for _ in range(50):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    by_hand = [1e-3 * (s / 10 if s < 10 else (50 - s) / 40) for s in range(50)]
    assert np.allclose(rates, by_hand) and optimizer.param_groups[0]["lr"] == 0.0
    with pytest.raises(ValueError, match="warmup_steps"):
        tc.warmup_linear_schedule(optimizer, 60, 50)


def test_config_counts_steps():
    config = tc.FineTuneConfig(batch_size=32, epochs=2)
    assert config.total_steps(100) == 8
    assert tc.FineTuneConfig(batch_size=32, epochs=2, max_steps=5).total_steps(100) == 5
    assert config.warmup_steps(100) == round(0.1 * 8) == 1
    assert tc.FineTuneConfig(batch_size=10, epochs=3, warmup_ratio=0.25).warmup_steps(100) == round(0.25 * 30)


def test_fine_tune_uses_the_configs_max_length(tiny):
    _, tokenizer, model = tiny
    config = tc.FineTuneConfig(max_length=6, epochs=1)
    data = config.tokenize(TOY_TEXTS, TOY_LABELS, tokenizer)
    assert data.max_length == 6 and max(data.lengths) <= 6
    with pytest.raises(ValueError, match="max_length=128"):
        tc.fine_tune(model, tokenizer, tc.TokenizedTexts(TOY_TEXTS, TOY_LABELS, tokenizer), None, config, progress=False)


def test_text_logits_keep_input_order_and_match_one_by_one(minilm):
    tokenizer, model = minilm
    texts = ["A long, winding and ultimately rewarding film about grief.", "Dull.", "Great fun for everyone."]
    together = tc.text_logits(model, tokenizer, texts, batch_size=2)
    alone = torch.cat([tc.text_logits(model, tokenizer, [t]) for t in texts])
    assert together.shape == (3, 2) and torch.allclose(together, alone, atol=1e-5)
    probs = tc.predict_texts(model, tokenizer, texts)
    assert probs.shape == (3, 2) and np.allclose(probs.sum(axis=1), 1.0)
    with pytest.raises(TypeError, match="list of texts"):
        tc.predict_texts(model, tokenizer, "one text")


def test_fine_tune_learns_a_toy_task_and_reload_is_identical(tiny, tmp_path):
    folder, tokenizer, _ = tiny
    _, model = load_text_classifier(folder, num_labels=2)
    data = tc.TokenizedTexts(TOY_TEXTS, TOY_LABELS, tokenizer)
    config = tc.FineTuneConfig(lr=1e-2, batch_size=4, epochs=15, warmup_ratio=0.1, patience=15)
    result = tc.fine_tune(model, tokenizer, data, data, config, progress=False)
    assert result.history.best_score == 1.0 and result.total_steps == 45
    assert result.history.steps <= 45 and result.seconds > 0 and result.cpu_seconds > 0
    model.save_pretrained(tmp_path / "saved")
    tokenizer.save_pretrained(tmp_path / "saved")
    _, reloaded = load_text_classifier(str(tmp_path / "saved"), num_labels=2)
    before = tc.text_logits(model, tokenizer, TOY_TEXTS)
    after = tc.text_logits(reloaded, tokenizer, TOY_TEXTS)
    assert torch.equal(before, after)
    assert (before.argmax(-1).numpy() == np.array(TOY_LABELS)).all()


def test_trainer_runs_the_same_job(tiny, tmp_path):
    folder, tokenizer, _ = tiny
    _, model = load_text_classifier(folder, num_labels=2)
    data = tc.TokenizedTexts(TOY_TEXTS, TOY_LABELS, tokenizer)
    config = tc.FineTuneConfig(lr=1e-2, batch_size=4, epochs=15, warmup_ratio=0.1, patience=15)
    result = tc.trainer_fine_tune(model, tokenizer, data, data, config, str(tmp_path / "trainer"))
    assert result.history.steps == 45 and len(result.history.epochs) == 15
    assert result.history.best_score == 1.0 and not result.history.stopped_early
    assert (tc.text_logits(model, tokenizer, TOY_TEXTS).argmax(-1).numpy() == np.array(TOY_LABELS)).all()


def test_trainer_caps_steps_like_the_course_loop(tiny, tmp_path):
    folder, tokenizer, _ = tiny
    _, model = load_text_classifier(folder, num_labels=2)
    data = tc.TokenizedTexts(TOY_TEXTS, TOY_LABELS, tokenizer)
    config = tc.FineTuneConfig(lr=1e-3, batch_size=4, epochs=2, max_steps=100)  # the cap is above 2 epochs
    result = tc.trainer_fine_tune(model, tokenizer, data, None, config, str(tmp_path / "trainer"))
    assert result.total_steps == 6 and result.history.steps == 6


def test_random_init_has_the_same_shape_but_no_pretrained_weights(minilm):
    _, loaded = minilm
    scratch = pretrained.random_init_classifier("minilm", num_labels=2, seed=0)
    a, b = loaded.state_dict(), scratch.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(a[name], b[name])
    again = pretrained.random_init_classifier("minilm", num_labels=2, seed=0).state_dict()
    assert torch.equal(again[name], b[name])
    assert math.isclose(b[name].std().item(), 0.02, rel_tol=0.1)  # BERT's initializer_range
