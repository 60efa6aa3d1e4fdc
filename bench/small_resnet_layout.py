"""Seconds per training step and per evaluated image of lesson 04's ResNet in each memory layout, and
seconds to augment a batch image by image (torchvision) or all at once (the course).

    python bench/small_resnet_layout.py            # ~1 minute on 2 CPU cores

The network is `small_resnet.SmallResNet` (width 16, 28×28 grey images, 5 classes), trained with SGD and
momentum on batches of 50 as in lessons 04 and 08. "contiguous" is PyTorch's default NCHW layout,
"channels last" is the layout `SmallResNet` puts its weights in. Augmentation: random shifts of up to 2
pixels (edges repeated) and mirror images, for a batch of 50, with torchvision's `v2.RandomCrop` and
`v2.RandomHorizontalFlip` applied per image vs `image_tensors.shift_and_flip` on the batch.
Writes bench/results/small_resnet_layout.md.
"""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

import torch

from transfer_utils.core.runtime import cpu_label, seed_everything, set_threads
from transfer_utils.core.storage import atomic_write_text
from transfer_utils.data.image_tensors import shift_and_flip
from transfer_utils.models.small_resnet import SmallResNet

RESULTS = Path(__file__).parent / "results" / "small_resnet_layout.md"
LAYOUTS = {"contiguous": torch.contiguous_format, "channels last": torch.channels_last}


def seconds_per_step(layout: torch.memory_format, steps: int, batch: int = 50) -> float:
    """Mean seconds of one SGD step (forward, backward, update) after 5 warm-up steps."""
    seed_everything(0)
    model = SmallResNet(num_classes=5, width=16).to(memory_format=layout).train()
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 5, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for i in range(steps + 5):
        if i == 5:
            started = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps


def seconds_per_image(layout: torch.memory_format, batches: int = 8, batch: int = 500) -> float:
    """Mean seconds to classify one image in evaluation batches of 500."""
    seed_everything(0)
    model = SmallResNet(num_classes=5, width=16).to(memory_format=layout).eval()
    x = torch.randn(batch, 1, 28, 28)
    with torch.no_grad():
        model(x)
        started = time.perf_counter()
        for _ in range(batches):
            model(x)
    return (time.perf_counter() - started) / (batches * batch)


def seconds_to_augment(per_image: bool, batches: int = 100, batch: int = 50) -> float:
    """Mean seconds to shift and mirror a batch of 50 grey 28×28 images."""
    from torchvision.transforms import v2

    transform = v2.Compose([v2.RandomCrop(28, padding=2, padding_mode="edge"), v2.RandomHorizontalFlip()])
    x = torch.randn(batch, 1, 28, 28)
    started = time.perf_counter()
    for _ in range(batches):
        torch.stack([transform(image) for image in x]) if per_image else shift_and_flip(x)
    return (time.perf_counter() - started) / batches


def main(steps: int = 60) -> str:
    """Time both layouts twice in alternating order and write the results table."""
    threads = set_threads(2)
    times = {name: {"step": [], "image": []} for name in LAYOUTS}
    for round_ in range(2):
        for name in (LAYOUTS if round_ == 0 else reversed(LAYOUTS)):
            times[name]["step"].append(seconds_per_step(LAYOUTS[name], steps))
            times[name]["image"].append(seconds_per_image(LAYOUTS[name]))
    best = {name: {kind: min(values) for kind, values in kinds.items()} for name, kinds in times.items()}
    ratio = {kind: best["contiguous"][kind] / best["channels last"][kind] for kind in ("step", "image")}
    lines = ["# Lesson 04's ResNet: contiguous vs channels-last weights", "",
             f"{datetime.date.today()}, {cpu_label()}, {os.cpu_count()} cores, {threads} torch threads, load "
             f"{os.getloadavg()[0]:.2f} (best of 2 rounds, {steps} timed steps each).", "",
             "| layout | seconds per training step (batch 50) | ms per evaluated image |", "|---|---|---|"]
    lines += [f"| {name} | {best[name]['step']:.4f} | {1000 * best[name]['image']:.3f} |" for name in LAYOUTS]
    augment = {"per image (torchvision)": min(seconds_to_augment(True) for _ in range(2)),
               "whole batch (shift_and_flip)": min(seconds_to_augment(False) for _ in range(2))}
    lines += ["", "| augmenting a batch of 50 | ms | share of a contiguous training step |", "|---|---|---|"]
    lines += [f"| {name} | {1000 * value:.2f} | {value / best['contiguous']['step']:.1%} |"
              for name, value in augment.items()]
    lines += ["", f"**Headline.** Channels-last weights make a training step {ratio['step']:.2f}× and evaluation "
              f"{ratio['image']:.2f}× as fast as the default layout on this processor ({cpu_label()}); augmenting "
              f"the batch at once is {augment['per image (torchvision)'] / augment['whole batch (shift_and_flip)']:.0f}× "
              "as fast as torchvision's per-image transforms.", ""]
    text = "\n".join(lines)
    atomic_write_text(RESULTS, text)
    return text


if __name__ == "__main__":
    print(main())
