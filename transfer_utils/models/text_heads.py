"""A classification head on the *mean* of the token vectors, the pooling a sentence-embedding model was trained with.

    MeanPoolingClassifier          encoder → average of the real tokens' vectors → dropout → linear layer
    load_mean_pooling_classifier   its tokenizer and the model: pretrained encoder, new head

``AutoModelForSequenceClassification`` classifies the [CLS] token through BERT's pooler (a dense layer
and tanh). all-MiniLM-L6-v2 was trained, contrastively, on the *mean* of its token vectors, never on
that vector, so fine-tuning from the [CLS] head starts from features the checkpoint did not shape;
the mean is the sentence vector the checkpoint was trained to produce (bench/fine_tuning_settings.py
measures the difference).

Lessons: 07 (in its text; bench/fine_tuning_settings.py runs it).
"""

from __future__ import annotations

import torch
from torch import nn

from transfer_utils.models.embeddings import mean_pool
from transfer_utils.models.pretrained import load_text_encoder


class MeanPoolingClassifier(nn.Module):
    """Logits from a linear layer on the mean-pooled last hidden states of a Hugging Face encoder."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None):
        """A ``SequenceClassifierOutput``: logits, and the cross-entropy loss when labels are given (``Trainer``)."""
        from transformers.modeling_outputs import SequenceClassifierOutput

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(mean_pool(hidden, attention_mask)))
        loss = None if labels is None else nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def load_mean_pooling_classifier(model_name: str = "minilm", num_labels: int = 2, dropout: float = 0.1):
    """Tokenizer and a ``MeanPoolingClassifier`` (pretrained encoder, randomly initialised head) in train mode."""
    if num_labels < 2:
        raise ValueError(f"num_labels={num_labels}: a classifier needs at least 2 classes")
    tokenizer, encoder = load_text_encoder(model_name)
    return tokenizer, MeanPoolingClassifier(encoder, num_labels, dropout).train()
