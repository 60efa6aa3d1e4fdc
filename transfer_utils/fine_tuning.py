"""Fine-tuning a pretrained text encoder for classification, the correct way, in small pieces.

    TokenizedTexts          texts tokenized once, *without* padding: item i = token ids, mask, label
    padding_collator        pads each batch to its own longest text (transformers' DataCollatorWithPadding)
    text_loader             batches of similar length while training (less padding, less compute)
    decay_parameter_groups  AdamW weight decay on weights only, not on biases and LayerNorm
    warmup_linear_schedule  learning rate: linear warm-up, then linear decay to zero
    fine_tune               all of the above around ``training.fit`` (clipping, early stopping, bf16 if asked)
    text_logits / predict_texts   scoring new texts (``training.predict`` on length-sorted batches)
    trainer_fine_tune       the same job through the Hugging Face ``Trainer``, for comparison

Lessons: 01, 07, 09, 11, 12.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from transfer_utils.data import loaders
from transfer_utils import training
from transfer_utils.training import precision


class TokenizedTexts(Dataset):
    """Texts tokenized once, unpadded; item i is ``{"input_ids": [...], "attention_mask": [...], "labels": y}``."""

    def __init__(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray | None, tokenizer: Any,
                 max_length: int = 128):
        texts = list(texts)
        if labels is not None and len(labels) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels; pass one label per text")
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be strings (e.g. splits.train.x), not token ids or tensors")
        # No padding and no return_tensors here: every text keeps its own length; the collator pads
        # each batch. (return_tensors="pt" here would give [1, L] tensors and [B, 1, L] batches.)
        encoded = tokenizer(texts, truncation=True, max_length=max_length)
        self.max_length = max_length
        self.input_ids: list[list[int]] = encoded["input_ids"]
        self.attention_mask: list[list[int]] = encoded["attention_mask"]
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {"input_ids": self.input_ids[i], "attention_mask": self.attention_mask[i]}
        if self.labels is not None:
            item["labels"] = int(self.labels[i])
        return item

    @property
    def lengths(self) -> list[int]:
        """Number of tokens of every text (special tokens included)."""
        return [len(ids) for ids in self.input_ids]


def padding_collator(tokenizer: Any) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
    """Pads a list of items to the longest one in the batch and stacks them into tensors."""
    from transformers import DataCollatorWithPadding

    pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return dict(pad(items))  # a plain dict (not a BatchEncoding): what training.fit expects

    return collate


def text_loader(dataset: TokenizedTexts, tokenizer: Any, batch_size: int = 32, *, shuffle: bool = False,
                group_by_length: bool = True, seed: int = 0) -> DataLoader:
    """Batches padded per batch; when shuffling, texts of similar length share a batch (seeded order)."""
    collate = padding_collator(tokenizer)
    if shuffle and group_by_length:
        from transformers.trainer_pt_utils import LengthGroupedSampler

        # Shuffle, cut into chunks of 50 batches, sort each chunk by length: random but low-padding batches.
        generator = torch.Generator().manual_seed(seed)
        sampler = LengthGroupedSampler(batch_size, lengths=dataset.lengths, generator=generator)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate)
    if not shuffle and group_by_length:
        # Evaluation: any order gives the same loss and accuracy, and sorted batches pad least.
        order = np.argsort(dataset.lengths, kind="stable").tolist()
        return DataLoader(dataset, batch_size=batch_size, sampler=order, collate_fn=collate)
    return loaders.make_loader(dataset, batch_size, shuffle=shuffle, seed=seed, collate_fn=collate)


NO_DECAY_LAYERS = (nn.LayerNorm,)


def decay_parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: weights with ``weight_decay``; biases and LayerNorm parameters with none."""
    no_decay: set[str] = set()
    for module_name, module in model.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            # Decay pulls a weight towards zero; for a bias or a LayerNorm scale that is no regularisation,
            # just a distortion (a LayerNorm gain of 0 switches the layer off).
            if isinstance(module, NO_DECAY_LAYERS) or name == "bias":
                no_decay.add(full)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in trainable if n not in no_decay], "weight_decay": weight_decay},
            {"params": [p for n, p in trainable if n in no_decay], "weight_decay": 0.0}]


def decayed_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that ``decay_parameter_groups`` puts in the decayed group."""
    decayed = {id(p) for p in decay_parameter_groups(model, 1.0)[0]["params"]}
    return [n for n, p in model.named_parameters() if id(p) in decayed]


def warmup_linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Learning rate from 0 up to its peak in ``warmup_steps``, then linearly down to 0 at ``total_steps``."""
    from transformers import get_linear_schedule_with_warmup

    if not 0 <= warmup_steps <= total_steps or total_steps < 1:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps}) and total >= 1")
    return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


@dataclass
class FineTuneConfig:
    """The hyper-parameters of one fine-tuning run (the same ones go to the HF Trainer)."""

    lr: float = 5e-5
    batch_size: int = 32
    epochs: int = 2
    max_steps: int = 0  # 0: epochs decide; > 0: stop after this many optimizer steps
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    clip_grad_norm: float = 1.0
    patience: int = 1  # epochs without a better validation accuracy before stopping
    max_length: int = 128  # tokens kept per text: tokenize with config.tokenize (fine_tune checks it)
    group_by_length: bool = True
    eval_batch_size: int = 128
    mixed_precision: str = "no"  # "no", "bf16", or "auto": bf16 where the hardware runs it fast (training.precision)
    seed: int = 0

    def total_steps(self, n_train: int) -> int:
        """Optimizer steps this config takes on ``n_train`` examples (before any early stop)."""
        steps = training.steps_for(self.epochs, n_train, self.batch_size)
        return min(steps, self.max_steps) if self.max_steps else steps

    def warmup_steps(self, n_train: int) -> int:
        """Steps of linear warm-up on ``n_train`` examples: ``warmup_ratio`` of the total, rounded."""
        return round(self.warmup_ratio * self.total_steps(n_train))

    def tokenize(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray | None,
                 tokenizer: Any) -> TokenizedTexts:
        """``TokenizedTexts`` cut at this config's ``max_length``."""
        return TokenizedTexts(texts, labels, tokenizer, self.max_length)


def _check_max_length(config: FineTuneConfig, **parts: TokenizedTexts | None) -> None:
    """Every dataset must have been tokenized with the config's ``max_length``."""
    for name, part in parts.items():
        if part is not None and part.max_length != config.max_length:
            raise ValueError(f"{name} was tokenized with max_length={part.max_length}, the config says "
                             f"{config.max_length}: build it with config.tokenize(texts, labels, tokenizer)")


@dataclass
class FineTuneResult:
    """What ``fine_tune`` returns: the training history, its wall-clock and CPU seconds, the schedule."""

    history: training.History
    seconds: float
    cpu_seconds: float
    total_steps: int
    config: FineTuneConfig
    precision: str = "no"  # what config.mixed_precision resolved to on this device: "no" or "bf16"


def fine_tune(model: nn.Module, tokenizer: Any, train: TokenizedTexts, val: TokenizedTexts | None,
              config: FineTuneConfig, progress: bool = True) -> FineTuneResult:
    """Full fine-tuning with AdamW (decay groups), warm-up + linear decay, clipping and early stopping."""
    _check_max_length(config, train=train, val=val)
    torch.manual_seed(config.seed)  # dropout masks
    train_loader = text_loader(train, tokenizer, config.batch_size, shuffle=True,
                               group_by_length=config.group_by_length, seed=config.seed)
    val_loader = None if val is None else text_loader(val, tokenizer, config.eval_batch_size)
    # fused=True: one kernel updates every tensor (several times faster than a loop over 100+ tensors)
    optimizer = torch.optim.AdamW(decay_parameter_groups(model, config.weight_decay), lr=config.lr, fused=True)
    total = config.total_steps(len(train))
    scheduler = warmup_linear_schedule(optimizer, config.warmup_steps(len(train)), total)
    device = training.model_device(model)
    mixed = precision.resolve_precision(config.mixed_precision, device)
    step = precision.autocast_step(mixed, device)  # training and validation forward passes alike
    started, cpu_started = time.perf_counter(), time.process_time()
    history = training.fit(model, train_loader, optimizer, epochs=config.epochs, max_steps=config.max_steps or None,
                           val_loader=val_loader, scheduler=scheduler, clip_grad_norm=config.clip_grad_norm,
                           step=step, eval_step=step,
                           patience=config.patience if val is not None else None, progress=progress)
    return FineTuneResult(history, time.perf_counter() - started, time.process_time() - cpu_started, total, config,
                          mixed)


def text_logits(model: nn.Module, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 128,
                max_length: int = 128, progress: bool = False, mixed_precision: str = "no") -> torch.Tensor:
    """Logits ``[len(texts), num_labels]`` by ``training.predict``; batches sorted by length, rows in input order."""
    dataset = TokenizedTexts(texts, None, tokenizer, max_length)
    loader = text_loader(dataset, tokenizer, batch_size)  # length-sorted batches: least padding
    order = torch.as_tensor(loader.sampler)
    device = training.model_device(model)
    with precision.autocast(precision.resolve_precision(mixed_precision, device), device):
        logits = training.predict(model, tqdm(loader, desc="scoring", disable=not progress, mininterval=1.0))
    in_order = torch.empty_like(logits)
    in_order[order] = logits
    return in_order


def predict_texts(model: nn.Module, tokenizer: Any, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
    """Class probabilities ``[len(texts), num_labels]`` for raw texts (softmax of ``text_logits``)."""
    if isinstance(texts, str):
        raise TypeError("pass a list of texts, e.g. predict_texts(model, tokenizer, ['a fine film'])")
    return torch.softmax(text_logits(model, tokenizer, texts, **kwargs), dim=-1).numpy()


def trainer_fine_tune(model: nn.Module, tokenizer: Any, train: TokenizedTexts, val: TokenizedTexts | None,
                      config: FineTuneConfig, output_dir: str) -> FineTuneResult:
    """The same fine-tuning through Hugging Face's ``Trainer`` (same optimizer, schedule, clipping, stopping)."""
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

    _check_max_length(config, train=train, val=val)
    total = config.total_steps(len(train))
    with_val = val is not None
    mixed = precision.resolve_precision(config.mixed_precision, training.model_device(model))
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size, learning_rate=config.lr,
        num_train_epochs=config.epochs, max_steps=total,  # the Trainer's max_steps overrides epochs: pass the total
        warmup_steps=config.warmup_steps(len(train)), lr_scheduler_type="linear",
        weight_decay=config.weight_decay, max_grad_norm=config.clip_grad_norm, optim="adamw_torch_fused",
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        eval_strategy="epoch" if with_val else "no", save_strategy="epoch" if with_val else "no",
        save_only_model=True, save_total_limit=1, load_best_model_at_end=with_val,
        metric_for_best_model="accuracy", greater_is_better=True, seed=config.seed,
        bf16=mixed == "bf16",  # autocast in training and evaluation, as fine_tune does
        use_cpu=not torch.cuda.is_available(), report_to="none", logging_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0)

    def accuracy(prediction) -> dict[str, float]:
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    stopper = EarlyStoppingCallback(config.patience)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      data_collator=padding_collator(tokenizer), processing_class=tokenizer,
                      compute_metrics=accuracy, callbacks=[stopper] if with_val else None)
    started, cpu_started = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if mixed != "no":  # accelerate keeps its state per process: a later Accelerator would inherit bf16
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    history = training.History(steps=trainer.state.global_step)
    history.epochs = [{"epoch": round(row["epoch"]), "val_accuracy": row["eval_accuracy"]}
                      for row in trainer.state.log_history if "eval_accuracy" in row]
    if history.epochs:
        best = max(history.epochs, key=lambda row: row["val_accuracy"])
        history.best_epoch, history.best_score = best["epoch"], best["val_accuracy"]
    history.stopped_early = with_val and stopper.early_stopping_patience_counter >= stopper.early_stopping_patience
    return FineTuneResult(history, seconds, cpu_seconds, total, config, mixed)


