"""Seconds per training step and per evaluated image of the course's CNNs in each memory layout, and
seconds to augment a batch image by image (torchvision) or all at once (the course).

    python bench/cnn_layout.py            # ~3 minutes on 2 CPU cores

The networks, at the batch sizes their lessons train with:
* lesson 04/08's `small_resnet.SmallResNet` (width 16, 28×28 grey images, 5 classes, batch 50);
* lesson 05's `deep.DigitCNN` (channels 16/32, 28×28 colour images, 10 classes, batch 64: 32 source + 32 target);
* lesson 08's EfficientNet-Lite0 body with a 10-class head (64×64 images, batch 25).
"contiguous" is PyTorch's default NCHW layout, "channels last" keeps every 4-D weight in NHWC order.
Augmentation: random shifts of up to 2 pixels (edges repeated) and mirror images, for a batch of 50, with
torchvision's `v2.RandomCrop` and `v2.RandomHorizontalFlip` per image vs `image_tensors.shift_and_flip`.
Writes bench/results/cnn_layout.md.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from transfer_utils.core.runtime import cpu_label, seed_everything, set_threads
from transfer_utils.core.storage import atomic_write_text
from transfer_utils.data.image_tensors import shift_and_flip
from transfer_utils.methods.deep import DigitCNN
from transfer_utils.models.small_resnet import SmallResNet

RESULTS = Path(__file__).parent / "results" / "cnn_layout.md"
LAYOUTS = {"contiguous": torch.contiguous_format, "channels last": torch.channels_last}


def efficientnet_lite0() -> nn.Module:
    """Lesson 08's pretrained EfficientNet-Lite0 body with a new 10-class head."""
    from transfer_utils.models.pretrained import load_image_backbone
    from transfer_utils.models.small_resnet import TransferNet

    backbone = load_image_backbone("efficientnet_lite0")
    return TransferNet(backbone.features, backbone.num_features, 10, True)


# name: (build the network, input shape of one batch, classes)
NETWORKS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], int]] = {
    "SmallResNet (lessons 04, 08)": (lambda: SmallResNet(num_classes=5, width=16), (50, 1, 28, 28), 5),
    "DigitCNN (lesson 05)": (lambda: DigitCNN(in_channels=3, channels=(16, 32)), (64, 3, 28, 28), 10),
    "EfficientNet-Lite0 (lesson 08)": (efficientnet_lite0, (25, 3, 64, 64), 10),
}


def seconds_per_step(network: str, layout: torch.memory_format, steps: int) -> float:
    """Mean seconds of one SGD step (forward, backward, update) after 5 warm-up steps."""
    build, shape, classes = NETWORKS[network]
    seed_everything(0)
    model = build().to(memory_format=layout).train()
    x, y = torch.randn(*shape), torch.randint(0, classes, (shape[0],))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for i in range(steps + 5):
        if i == 5:
            started = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps


def seconds_per_image(network: str, layout: torch.memory_format, batches: int = 4, batch: int = 500) -> float:
    """Mean seconds to classify one image in evaluation batches of 500."""
    build, shape, _ = NETWORKS[network]
    seed_everything(0)
    model = build().to(memory_format=layout).eval()
    x = torch.randn(batch, *shape[1:])
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


def main(steps: int = 40) -> str:
    """Time both layouts of every network twice in alternating order and write the results table."""
    threads = set_threads(2)
    lines = ["# The course's CNNs: contiguous vs channels-last weights", "",
             f"{datetime.date.today()}, {cpu_label()}, {os.cpu_count()} cores, {threads} torch threads, load "
             f"{os.getloadavg()[0]:.2f} before the run (best of 2 rounds, {steps} timed steps each).", "",
             "| network | layout | seconds per training step | ms per evaluated image |", "|---|---|---|---|"]
    ratios = {}
    for network in NETWORKS:
        times = {name: {"step": [], "image": []} for name in LAYOUTS}
        for round_ in range(2):
            for name in (LAYOUTS if round_ == 0 else reversed(LAYOUTS)):
                times[name]["step"].append(seconds_per_step(network, LAYOUTS[name], steps))
                times[name]["image"].append(seconds_per_image(network, LAYOUTS[name]))
        best = {name: {kind: min(values) for kind, values in kinds.items()} for name, kinds in times.items()}
        ratios[network] = {kind: best["contiguous"][kind] / best["channels last"][kind] for kind in ("step", "image")}
        lines += [f"| {network} | {name} | {best[name]['step']:.4f} | {1000 * best[name]['image']:.3f} |"
                  for name in LAYOUTS]
    augment = {"per image (torchvision)": min(seconds_to_augment(True) for _ in range(2)),
               "whole batch (shift_and_flip)": min(seconds_to_augment(False) for _ in range(2))}
    lines += ["", "| augmenting a batch of 50 grey 28×28 images | ms |", "|---|---|"]
    lines += [f"| {name} | {1000 * value:.2f} |" for name, value in augment.items()]
    lines += ["", f"**Headline.** On {cpu_label()}, channels-last weights make a training step / an evaluated image "
              + "; ".join(f"{r['step']:.2f}× / {r['image']:.2f}× as fast for {network}" for network, r in ratios.items())
              + f". Augmenting the batch at once is "
              f"{augment['per image (torchvision)'] / augment['whole batch (shift_and_flip)']:.0f}× as fast as "
              "torchvision's per-image transforms.", ""]
    text = "\n".join(lines)
    atomic_write_text(RESULTS, text)
    return text


if __name__ == "__main__":
    print(main())
