"""A small text network over a pretrained model's token embeddings: the student of lesson 09.

    TokenIds       texts → padded token-id tensors in a compact vocabulary (the word pieces the texts use)
    token_table    that vocabulary's rows of a pretrained embedding matrix, compressed by PCA to ``dim``
    TextCNN        embedding → 1-D convolution → max over positions → (features) → linear head

Lessons: 09.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

PAD = 0  # compact id 0 is padding; compact id 1 stands for every word piece the vocabulary lacks


class TokenIds:
    """A pretrained tokenizer's word pieces, renumbered to the ones seen in ``texts`` (plus pad and unknown)."""

    def __init__(self, tokenizer: Any, texts: Sequence[str], max_length: int = 64):
        self.tokenizer, self.max_length = tokenizer, max_length
        seen = sorted({i for ids in self._pretrained_ids(texts) for i in ids})
        self.pretrained_ids = np.array(seen, dtype=np.int64)  # compact id k + 2 ↔ pretrained_ids[k]
        self._lookup = {token: k + 2 for k, token in enumerate(seen)}

    def _pretrained_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids of each text, without [CLS] / [SEP]."""
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=self.max_length)
        return encoded["input_ids"]

    def __len__(self) -> int:
        return len(self.pretrained_ids) + 2

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """(n, longest) compact ids, padded with ``PAD``; every text keeps at least one position."""
        rows = [[self._lookup.get(i, 1) for i in ids] or [1] for ids in self._pretrained_ids(texts)]
        out = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)
        for n, row in enumerate(rows):
            out[n, :len(row)] = torch.tensor(row)
        return out


def token_table(vocabulary: TokenIds, pretrained: torch.Tensor, dim: int) -> torch.Tensor:
    """Rows of ``pretrained`` (vocab, hidden) for the vocabulary, projected on their top ``dim`` principal axes.

    Row 0 (padding) is zero, row 1 (unknown) the mean; the table is scaled to unit variance per column.
    """
    rows = pretrained[torch.as_tensor(vocabulary.pretrained_ids)].double()
    centred = rows - rows.mean(dim=0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ v[:dim].T
    projected = projected / projected.std(dim=0)
    return torch.cat([torch.zeros(2, dim, dtype=projected.dtype), projected]).float()


class TextCNN(nn.Module):
    """Token embeddings → ReLU(Conv1d) → max over real positions → ``features``; ``head`` gives the logits."""

    def __init__(self, table: torch.Tensor, num_classes: int, width: int = 64, kernel_size: int = 3,
                 dropout: float = 0.2):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(table.clone(), freeze=False, padding_idx=PAD)
        self.conv = nn.Conv1d(table.shape[1], width, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """The text's vector (batch, width): the largest response of each filter over the real tokens."""
        ids = ids[:, :max(int((ids != PAD).sum(dim=1).max()), 1)]  # drop columns that are padding in every row
        hidden = torch.relu(self.conv(self.embedding(ids).transpose(1, 2)))  # (batch, width, length)
        hidden = hidden.masked_fill((ids == PAD).unsqueeze(1), 0.0)  # ReLU ≥ 0, so 0 never wins over a token
        return self.dropout(hidden.amax(dim=2))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(ids))
