"""The mean-pooling classifier: its features are the course's sentence embeddings, padding changes nothing,
it computes the loss the Trainer needs, and it fine-tunes through the course loop."""

import numpy as np
import pytest
import torch

from conftest import build_tiny_bert
from transfer_utils import fine_tuning as tc
from transfer_utils.models import embeddings
from transfer_utils.models.text_heads import MeanPoolingClassifier, load_mean_pooling_classifier

TEXTS = ["a good film", "a bad film", "the movie is good .", "the movie is bad .", "good", "bad"] * 2
LABELS = [1, 0] * 6


@pytest.fixture(scope="module")
def minilm():
    torch.manual_seed(0)
    return load_mean_pooling_classifier("minilm", num_labels=2)


def test_features_are_the_sentence_embeddings(minilm):
    tokenizer, model = minilm
    model.eval()
    features = embeddings.encode_texts(TEXTS[:4], "minilm", cache=False, progress=False)
    logits = tc.text_logits(model, tokenizer, TEXTS[:4])
    with torch.no_grad():
        expected = model.classifier(torch.as_tensor(features))
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_a_texts_logits(minilm):
    tokenizer, model = minilm
    model.eval()
    alone = tc.text_logits(model, tokenizer, ["good"], batch_size=1)
    batch = tokenizer(["good", "a much longer review that needs a lot of padding for the short one"],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        padded = model(**batch).logits[:1]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)


def test_labels_give_the_cross_entropy_loss(minilm):
    tokenizer, model = minilm
    model.eval()
    batch = tokenizer(TEXTS[:4], padding=True, return_tensors="pt")
    labels = torch.tensor(LABELS[:4])
    with torch.no_grad():
        out = model(**batch, labels=labels)
    assert out.loss is not None and model(**batch).loss is None
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))


def test_fine_tunes_a_toy_task_with_the_course_loop(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    folder = build_tiny_bert(tmp_path / "tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    model = MeanPoolingClassifier(AutoModel.from_pretrained(folder), num_labels=2)
    data = tc.TokenizedTexts(TEXTS, LABELS, tokenizer)
    config = tc.FineTuneConfig(lr=1e-2, batch_size=4, epochs=15, patience=15)
    result = tc.fine_tune(model, tokenizer, data, data, config, progress=False)
    assert result.history.best_score == 1.0
    assert (tc.text_logits(model, tokenizer, TEXTS).argmax(-1).numpy() == np.array(LABELS)).all()


def test_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        load_mean_pooling_classifier("minilm", num_labels=1)
