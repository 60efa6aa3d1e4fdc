"""Batches: a seeded DataLoader for arrays or datasets, and two loaders walked side by side.

Used by lessons 04, 05 and 08 (through ``image_tensors``) and by ``fine_tuning``.

Lessons: 04, 05, 09.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


def _as_tensor(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A tensor from an array; float64 becomes float32, the dtype models use."""
    tensor = torch.as_tensor(np.asarray(array)) if not isinstance(array, torch.Tensor) else array
    return tensor.float() if tensor.dtype == torch.float64 else tensor


def make_loader(data: Dataset | tuple[np.ndarray | torch.Tensor, ...], batch_size: int = 64, *,
                shuffle: bool = False, seed: int = 0, collate_fn: Callable | None = None,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader whose shuffling order depends only on ``seed`` (its own generator)."""
    if isinstance(data, tuple):
        data = TensorDataset(*(_as_tensor(a) for a in data))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=collate_fn, drop_last=drop_last)


def order_generators(loader: Iterable) -> list[torch.Generator]:
    """The distinct torch generators that decide a loader's order (its own, its sampler's, its batch sampler's)."""
    found: dict[int, torch.Generator] = {}
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    for owner in (loader, sampler, getattr(batch_sampler, "sampler", None)):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator):
            found.setdefault(id(generator), generator)
    return list(found.values())


class _Cycle:
    """Endless batches of one loader: a new pass (a new shuffle) starts whenever one runs out.

    It remembers where it is (the generator states at the start of the current pass and how many
    batches of that pass were taken), so a resumed run can continue with exactly the same batches.
    """

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader
        self.iterator: Iterator | None = None
        self.pass_start: list[torch.Tensor] = []
        self.taken = 0

    def _generators(self) -> list[torch.Generator]:
        """The generators that decide the loader's order."""
        return order_generators(self.loader)

    def restart(self) -> None:
        """Start a new pass over the loader."""
        self.pass_start = [g.get_state() for g in self._generators()]
        self.iterator, self.taken = iter(self.loader), 0

    def next(self) -> Any:
        """The next batch, starting a new pass when the current one is exhausted."""
        if self.iterator is None:
            self.restart()
        try:
            batch = next(self.iterator)  # type: ignore[arg-type]
        except StopIteration:
            self.restart()
            batch = next(self.iterator)  # type: ignore[arg-type]
        self.taken += 1
        return batch

    def finish_pass(self) -> None:
        """Run a pass whose batches were all taken to its end, as a ``for`` loop over the loader would.

        (A sampler can draw from its generator after its last item: skipping that would change the next shuffle.)
        """
        if self.iterator is not None and hasattr(self.loader, "__len__") and self.taken >= len(self.loader):
            for _ in self.iterator:
                raise RuntimeError("the loader gave more batches than its length")
            self.iterator = None

    def state_dict(self) -> dict[str, Any]:
        """Where this cycle is: the current pass's starting generator states and batches taken."""
        return {"generators": [g.get_state() for g in self._generators()], "started": self.iterator is not None,
                "pass_start": self.pass_start, "taken": self.taken}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go back to a saved position: replay the saved pass from its start, skipping the batches taken."""
        self.iterator, self.taken = None, 0
        for generator, saved in zip(self._generators(), state["generators"]):
            generator.set_state(saved)
        if not state["started"]:
            return
        for generator, saved in zip(self._generators(), state["pass_start"]):
            generator.set_state(saved)
        self.restart()
        for _ in range(state["taken"]):
            next(self.iterator)  # type: ignore[arg-type]
        self.taken = state["taken"]


class PairedLoader:
    """Batches of two loaders side by side: yields ``(batch_of_first, batch_of_second)``.

    Either loader starts a new pass (a new shuffle) whenever it runs out, so the two can have
    different sizes. An epoch is ``steps_per_epoch`` pairs (default: one pass over ``first``).
    ``carry_over=False``: every epoch starts both loaders afresh (lesson 04's joint training).
    ``carry_over=True``: every epoch continues both where the previous one stopped, so every example
    is seen equally often over many epochs (lesson 05's source and target batches).
    ``state_dict`` / ``load_state_dict`` save and restore the position, for resumed training.
    """

    def __init__(self, first: Iterable, second: Iterable, steps_per_epoch: int | None = None, *,
                 carry_over: bool = False) -> None:
        if steps_per_epoch is None and not hasattr(first, "__len__"):
            raise ValueError("give steps_per_epoch when the first loader has no length")
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.first, self.second = first, second
        self.steps_per_epoch = steps_per_epoch or len(first)  # type: ignore[arg-type]
        self.carry_over = carry_over
        self._cycles = (_Cycle(first), _Cycle(second))

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        a, b = self._cycles
        if not self.carry_over:
            b.restart()  # a fresh pass of both loaders each epoch
            a.restart()
        for _ in range(self.steps_per_epoch):
            yield a.next(), b.next()
        if not self.carry_over:
            a.finish_pass()  # as a plain ``for batch in first`` loop ends

    def state_dict(self) -> dict[str, Any]:
        """The position of both loaders (between epochs)."""
        return {"first": self._cycles[0].state_dict(), "second": self._cycles[1].state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a position saved by ``state_dict``."""
        self._cycles[0].load_state_dict(state["first"])
        self._cycles[1].load_state_dict(state["second"])
