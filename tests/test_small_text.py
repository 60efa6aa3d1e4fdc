"""The student network of lesson 09: compact token ids, the PCA token table (against scikit-learn), padding."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from transfer_utils.models.small_text import PAD, TextCNN, TokenIds, token_table


@pytest.fixture(scope="module")
def tokenizer():
    from transfer_utils.models.pretrained import load_tokenizer

    return load_tokenizer("minilm")


TEXTS = ["A fine, funny film.", "Dull and far too long.", "funny"]


def test_token_ids_renumber_the_pieces_the_texts_use(tokenizer):
    vocabulary = TokenIds(tokenizer, TEXTS)
    pieces = tokenizer(TEXTS, add_special_tokens=False)["input_ids"]
    assert len(vocabulary) == len({i for ids in pieces for i in ids}) + 2  # + padding and unknown
    ids = vocabulary(TEXTS)
    assert ids.shape == (3, max(len(p) for p in pieces))
    for row, p in zip(ids, pieces):  # compact ids map back to the tokenizer's own ids, then padding
        back = vocabulary.pretrained_ids[row[:len(p)].numpy() - 2]
        assert back.tolist() == p and (row[len(p):] == PAD).all()
    unknown = vocabulary(["zebra xylophone"])
    assert (unknown[unknown != PAD] == 1).all()  # pieces the vocabulary never saw → the unknown id


def test_token_table_is_pca_of_the_used_rows(tokenizer):
    vocabulary = TokenIds(tokenizer, TEXTS + ["Another snippet about a great performance and a weak plot."])
    pretrained = torch.randn(tokenizer.vocab_size, 12, generator=torch.Generator().manual_seed(0))
    table = token_table(vocabulary, pretrained, 3)
    assert table.shape == (len(vocabulary), 3) and (table[0] == 0).all() and (table[1] == 0).all()
    reference = PCA(3).fit_transform(pretrained[vocabulary.pretrained_ids].numpy().astype(np.float64))
    reference /= reference.std(axis=0, ddof=1)
    for column in range(3):  # principal axes are defined up to sign
        ours = table[2:, column].numpy()
        assert min(np.abs(ours - reference[:, column]).max(), np.abs(ours + reference[:, column]).max()) < 1e-4


def test_text_cnn_ignores_padding_and_counts_its_parameters():
    torch.manual_seed(0)
    model = TextCNN(torch.randn(50, 8), num_classes=3, width=5, kernel_size=3).eval()
    ids = torch.tensor([[4, 9, 2, PAD], [7, 3, PAD, PAD]])
    padded = torch.cat([ids, torch.full((2, 6), PAD)], dim=1)
    assert torch.allclose(model(ids), model(padded), atol=1e-6)
    assert model.features(ids).shape == (2, 5)
    assert sum(p.numel() for p in model.parameters()) == 50 * 8 + (8 * 3 + 1) * 5 + (5 + 1) * 3
