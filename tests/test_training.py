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
    history = training.fit(model, loaders.make_loader((xt, yt), 64, shuffle=True), optimizer, epochs=2,
                           scheduler=scheduler, val_loader=loaders.make_loader((xv, yv), 256), checkpoint_dir=tmp_path,
                           progress=False)
    assert {p.name for p in tmp_path.iterdir()} == {"best.pt", "best.pt.sha256", "latest.pt", "latest.pt.sha256"}
    path = tmp_path / "best.pt"
    extra = training.load_checkpoint(path, fresh := mlp(seed=1), fresh_opt := torch.optim.AdamW(fresh.parameters(), 1e-2))
    assert extra["history"]["best_epoch"] == history.best_epoch and len(extra["history"]["epochs"]) == history.best_epoch
    # fit restored the best weights; the checkpoint holds the same ones, bit for bit
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    loader = loaders.make_loader((xv, yv), 256)
    again = mlp(seed=2)
    training.load_checkpoint(path, again)
    assert torch.equal(training.predict(fresh, loader), training.predict(again, loader))
    assert fresh_opt.state_dict()["state"][0]["exp_avg"].abs().sum() > 0
    saved = training.save_checkpoint(tmp_path / "plain.pt", again, note="plain values too")
    assert training.load_checkpoint(saved, mlp(seed=3)) == {"note": "plain values too"}


def test_a_corrupted_checkpoint_is_refused_with_its_path(tmp_path):
    model = mlp()
    path = training.save_checkpoint(tmp_path / "model.pt", model)
    data = bytearray(path.read_bytes())
    weights = model[0].weight.detach().numpy().tobytes()[:64]
    at = bytes(data).find(weights)
    assert at > 0  # the tensor data of the first layer, stored as raw bytes
    data[at + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(training.CorruptCheckpointError, match="model.pt"):
        training.load_checkpoint(path, mlp())
    (tmp_path / "model.pt.sha256").unlink()
    with pytest.raises(training.CorruptCheckpointError, match="model.pt"):
        training.load_checkpoint(path, mlp())


def _diverging_run(digits, epochs, **kwargs):
    """SGD whose learning rate jumps 40-fold after two epochs: validation peaks, then falls apart."""
    (xt, yt), (xv, yv) = digits
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 if step < 80 else 40.0)
    torch.manual_seed(0)  # dropout
    history = training.fit(model, loaders.make_loader((xt, yt), 32, shuffle=True, seed=1), optimizer, epochs=epochs,
                           scheduler=scheduler, val_loader=loaders.make_loader((xv, yv), 256), progress=False,
                           **kwargs)
    return model, history


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy"])
def test_restored_weights_are_the_best_epochs_not_the_last(digits, monitor):
    model, history = _diverging_run(digits, 5, monitor=monitor)
    scores = history.column(monitor)
    best = min(scores) if monitor == "val_loss" else max(scores)  # mode follows the monitor's name
    assert history.best_score == best and history.best_epoch == scores.index(best) + 1 < len(scores)
    assert scores[-1] != best
    at_best, _ = _diverging_run(digits, history.best_epoch, restore_best=False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), at_best.state_dict().values()))


def test_val_loss_monitor_keeps_the_lowest_epoch_and_stops(digits):
    _, history = _diverging_run(digits, 10, monitor="val_loss", patience=2)
    losses = history.column("val_loss")
    assert history.stopped_early and len(losses) == history.best_epoch + 2
    assert history.best_score == min(losses)


def test_extra_evaluation_sets_get_their_own_columns(digits):
    (xt, yt), (xv, yv) = digits
    model = mlp()
    history = training.fit(model, loaders.make_loader((xt, yt), 64), torch.optim.SGD(model.parameters(), 0.1),
                           epochs=2, val_loader=loaders.make_loader((xv, yv), 256), progress=False,
                           val_loaders={"train_sample": loaders.make_loader((xt[:100], yt[:100]), 50)},
                           monitor="train_sample_loss", patience=5)
    assert {"val_accuracy", "val_loss", "train_sample_accuracy", "train_sample_loss"} <= set(history.final)
    assert history.best_score == min(history.column("train_sample_loss"))


def _resumable_run(digits, folder, epochs, resume=False):
    (xt, yt), (xv, yv) = digits
    model = mlp()  # dropout: the torch random state matters
    optimizer = torch.optim.AdamW(model.parameters(), 1e-2)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, total_iters=6 * 20)
    torch.manual_seed(7)
    history = training.fit(model, loaders.make_loader((xt, yt), 64, shuffle=True, seed=2), optimizer, epochs=epochs,
                           scheduler=scheduler, val_loader=loaders.make_loader((xv, yv), 256), checkpoint_dir=folder,
                           resume_from=folder if resume else None, patience=10, progress=False)
    return model, history


def test_resuming_from_the_latest_checkpoint_equals_an_uninterrupted_run(digits, tmp_path):
    full_model, full = _resumable_run(digits, tmp_path / "full", 6)
    _resumable_run(digits, tmp_path / "parts", 2)
    torch.manual_seed(99)  # as in a new process: the checkpoint brings the random states back
    model, history = _resumable_run(digits, tmp_path / "parts", 6, resume=True)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(history.epochs) == drop(full.epochs) and history.steps == full.steps
    assert (history.best_epoch, history.best_score) == (full.best_epoch, full.best_score)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), full_model.state_dict().values()))


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
    with pytest.raises(KeyError, match="monitor"):
        training.fit(model, loaders.make_loader((xt, yt), 64), torch.optim.SGD(model.parameters(), 0.1),
                     monitor="val_f1", patience=1, val_loaders={"val": loaders.make_loader((xt, yt), 256)},
                     progress=False)


def test_max_steps_caps_training(digits):
    (xt, yt), _ = digits
    model = mlp()
    history = training.fit(model, loaders.make_loader((xt, yt), 64), torch.optim.SGD(model.parameters(), 0.1),
                           epochs=10, max_steps=25, progress=False)
    assert history.steps == 25 and len(history.epochs) == 2
    assert training.steps_for(2, 1257, 64) == 40
