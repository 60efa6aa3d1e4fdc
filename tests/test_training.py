"""The training loop on a small real task (scikit-learn digits): learning, early stopping, checkpoints."""

import numpy as np
import pytest
import torch
from torch import nn

from transfer_utils.data import loaders
from transfer_utils.data import datasets
from transfer_utils import training


@pytest.fixture(scope="module")
def digits():
    splits = datasets.load_sklearn_digits()
    scale = lambda part: (part.x.reshape(len(part), -1) / 16.0).astype(np.float32)  # noqa: E731
    return (scale(splits.train), splits.train.y), (scale(splits.val), splits.val.y)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10))


def test_loss_decreases_and_model_learns(digits):
    (xt, yt), (xv, yv) = digits
    model = mlp()
    history = training.fit(model, loaders.make_loader((xt, yt), 32, shuffle=True), torch.optim.Adam(model.parameters(), 1e-2),
                           epochs=5, val_loader=loaders.make_loader((xv, yv), 256), progress=False)
    losses = history.column("train_loss")
    assert losses[-1] < losses[0] * 0.5
    assert history.best_score > 0.9 and history.steps == 5 * 40
    assert training.evaluate(model, loaders.make_loader((xv, yv), 256))["accuracy"] == pytest.approx(history.best_score)


def test_early_stopping_stops_and_restores_best(digits):
    (xt, yt), (xv, yv) = digits
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # nothing changes: no epoch can improve
    history = training.fit(model, loaders.make_loader((xt, yt), 64), optimizer, epochs=20,
                           val_loader=loaders.make_loader((xv, yv), 256), patience=2, progress=False)
    assert history.stopped_early and len(history.epochs) == 3 and history.best_epoch == 1


def test_checkpoint_round_trip_is_exact(digits, tmp_path):
    (xt, yt), (xv, yv) = digits
    model = mlp()
    optimizer = torch.optim.AdamW(model.parameters(), 1e-2)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, total_iters=100)
    path = tmp_path / "best.pt"
    training.fit(model, loaders.make_loader((xt, yt), 64, shuffle=True), optimizer, epochs=2, scheduler=scheduler,
                 val_loader=loaders.make_loader((xv, yv), 256), checkpoint_path=path, progress=False)
    extra = training.load_checkpoint(path, fresh := mlp(seed=1), fresh_opt := torch.optim.AdamW(fresh.parameters(), 1e-2))
    assert extra["epoch"] in (1, 2) and len(extra["history"]) == extra["epoch"]
    # fit restored the best weights; the checkpoint holds the same ones, bit for bit
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    loader = loaders.make_loader((xv, yv), 256)
    again = mlp(seed=2)
    training.load_checkpoint(path, again)
    assert torch.equal(training.predict(fresh, loader), training.predict(again, loader))
    assert fresh_opt.state_dict()["state"][0]["exp_avg"].abs().sum() > 0


def test_weighted_loss_matches_manual_weighted_mean():
    logits = torch.randn(4, 3, requires_grad=True)
    model = nn.Identity()
    targets = torch.tensor([0, 1, 2, 1])
    weights = torch.tensor([1.0, 2.0, 0.0, 1.0])
    out = training.supervised_step(model, (logits, targets, weights))
    manual = (nn.functional.cross_entropy(logits, targets, reduction="none") * weights).sum() / weights.sum()
    assert torch.allclose(out.loss, manual)


def test_dict_batches_and_model_outputs_with_logits():
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 2)

        def forward(self, features, mask):
            from types import SimpleNamespace
            return SimpleNamespace(logits=self.linear(features * mask))

    model = Wrapped()
    batch = {"features": torch.randn(8, 4), "mask": torch.ones(8, 4), "labels": torch.randint(0, 2, (8,))}
    history = training.fit(model, [batch] * 3, torch.optim.SGD(model.parameters(), 0.1), epochs=2, progress=False)
    assert history.steps == 6 and "train_accuracy" in history.epochs[0]
    assert training.predict(model, [batch]).shape == (8, 2)


def test_fit_is_repeatable_and_leaves_mode(digits):
    (xt, yt), _ = digits

    def run():
        model = mlp(seed=0)
        torch.manual_seed(0)
        training.fit(model, loaders.make_loader((xt, yt), 64, shuffle=True, seed=3),
                     torch.optim.SGD(model.parameters(), 0.1), epochs=1, progress=False)
        return model
    a, b = run(), run()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    a.eval()
    training.evaluate(a, loaders.make_loader((xt[:10], yt[:10]), 10))
    assert not a.training


def test_fit_rejects_impossible_monitoring(digits):
    (xt, yt), _ = digits
    model = mlp()
    with pytest.raises(ValueError, match="needs a val_loader"):
        training.fit(model, loaders.make_loader((xt, yt), 64), torch.optim.SGD(model.parameters(), 0.1), patience=1)
    with pytest.raises(ValueError, match="mode"):
        training.fit(model, [], torch.optim.SGD(model.parameters(), 0.1), mode="up")


def test_max_steps_caps_training(digits):
    (xt, yt), _ = digits
    model = mlp()
    history = training.fit(model, loaders.make_loader((xt, yt), 64), torch.optim.SGD(model.parameters(), 0.1),
                           epochs=10, max_steps=25, progress=False)
    assert history.steps == 25 and len(history.epochs) == 2
    assert training.steps_for(2, 1257, 64) == 40
