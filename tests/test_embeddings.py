"""Sentence features: mean pooling, the cache, and that the features carry meaning."""

import numpy as np
import torch

from transfer_utils.models import embeddings


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(embeddings.mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_encode_texts_matches_manual_forward_and_caches(isolated_data):
    sentences = ["A warm, funny film.", "Dull and far too long.", "An absolute triumph of a movie."]
    features = embeddings.encode_texts(sentences, progress=False)
    assert features.shape == (3, 384) and features.dtype == np.float32
    from transfer_utils.models.pretrained import load_text_encoder

    tokenizer, model = load_text_encoder()
    with torch.no_grad():
        batch = tokenizer(sentences[1:2], return_tensors="pt")
        manual = embeddings.mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])
    assert np.allclose(features[1], manual[0].numpy(), atol=1e-5)  # batching by length changes nothing
    cached = list((isolated_data / "cache" / "text_features").glob("*.npy"))
    assert len(cached) == 1
    assert np.array_equal(embeddings.encode_texts(sentences, progress=False), features)


def test_features_put_similar_sentences_together(isolated_data):
    good, great, bad = embeddings.encode_texts(["a wonderful film", "a brilliant movie", "a terrible film"],
                                         normalize=True, cache=False, progress=False)
    assert good @ great > good @ bad


def test_bf16_features_are_float32_close_and_cached_apart(isolated_data):
    sentences = ["A warm, funny film.", "Dull and far too long."]
    full = embeddings.encode_texts(sentences, progress=False)
    mixed = embeddings.encode_texts(sentences, progress=False, mixed_precision="bf16")
    assert mixed.dtype == np.float32 and not np.array_equal(mixed, full)  # bf16 really ran
    cosine = (mixed * full).sum(1) / np.linalg.norm(mixed, axis=1) / np.linalg.norm(full, axis=1)
    assert cosine.min() > 0.99
    assert len(list((isolated_data / "cache" / "text_features").glob("*.npy"))) == 2  # one key per precision
