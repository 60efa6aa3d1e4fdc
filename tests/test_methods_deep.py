"""Deep domain adaptation: gradient reversal, the DANN schedules and step, Deep CORAL and MMD losses."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import rbf_kernel
from torch.nn import functional as F

from transfer_utils.data import loaders
from transfer_utils import training
from transfer_utils.methods.deep import (DANNStep, DeepCORALStep, DeepMMDStep, DigitCNN, dann_lambda, dann_lr_factor,
                                         dann_sgd, deep_coral_loss, grad_reverse, mmd_loss, source_only_step)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread is faster, and immune to a busy machine's oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- gradient reversal ---------------------------------------------------------------------------

@pytest.mark.parametrize("lambda_", [0.0, 0.3, 1.0, 2.5])
def test_grad_reverse_is_identity_forward_and_flips_and_scales_the_gradient(lambda_):
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(5, 3, dtype=torch.float64)
    reversed_out = grad_reverse(x, lambda_)
    assert torch.equal(reversed_out, x) and reversed_out is not x
    (grad_reversed,) = torch.autograd.grad((torch.sin(reversed_out) * weights).sum(), x)
    (grad_plain,) = torch.autograd.grad((torch.sin(x) * weights).sum(), x)
    assert torch.equal(grad_reversed, -lambda_ * grad_plain)  # exact: one multiplication by −λ


def test_gradient_reversal_rejects_bad_lambda():
    x = torch.randn(4, 2, requires_grad=True)
    with pytest.raises(ValueError, match="lambda_"):
        grad_reverse(x, -1.0)
    with pytest.raises(ValueError, match="lambda_"):
        grad_reverse(x, torch.tensor(0.5))


def test_dann_step_gives_features_the_task_gradient_minus_lambda_times_the_domain_gradient():
    torch.manual_seed(0)
    model = DigitCNN(in_channels=1, image_size=8, channels=(4, 6), hidden=8, padding=2).double()
    xs, ys, xt = torch.randn(6, 1, 8, 8).double(), torch.randint(0, 10, (6,)), torch.randn(6, 1, 8, 8).double()
    step = DANNStep(total_steps=10)
    step.steps_done = 3  # λ = dann_lambda(0.3)
    lambda_ = dann_lambda(0.3)
    out = step(model, (xs, ys, xt))
    ours = torch.autograd.grad(out.loss, list(model.parameters()), allow_unused=True)
    # Reference without the layer: the two losses and their gradients computed separately by autograd.
    features = model.features(torch.cat([xs, xt]))
    task = F.cross_entropy(model.classifier(features[:6]), ys)
    domain = F.binary_cross_entropy_with_logits(model.domain_head(features).squeeze(-1),
                                                torch.cat([torch.zeros(6), torch.ones(6)]).double())
    g_task = torch.autograd.grad(task, list(model.parameters()), allow_unused=True, retain_graph=True)
    g_domain = torch.autograd.grad(domain, list(model.parameters()), allow_unused=True)
    zero = lambda g, p: torch.zeros_like(p) if g is None else g  # noqa: E731
    for (name, p), g, gt, gd in zip(model.named_parameters(), ours, g_task, g_domain):
        g, gt, gd = zero(g, p), zero(gt, p), zero(gd, p)
        expected = gd if name.startswith("domain_head") else gt - lambda_ * gd if name.startswith("features") else gt
        assert torch.allclose(g, expected, atol=1e-10), name
    assert out.logs["lambda"] == pytest.approx(lambda_) and step.steps_done == 4
    assert out.loss.item() == pytest.approx(task.item() + domain.item())


# --- schedules ----------------------------------------------------------------------------------

def test_dann_lambda_and_learning_rate_schedules_follow_the_paper():
    assert dann_lambda(0.0) == 0.0 and dann_lr_factor(0.0) == 1.0
    assert dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_lambda(0.25) == pytest.approx(2 / (1 + math.exp(-2.5)) - 1)
    assert dann_lr_factor(1.0) == pytest.approx(11 ** -0.75)
    ps = np.linspace(0, 1, 21)
    assert np.all(np.diff([dann_lambda(p) for p in ps]) > 0) and np.all(np.diff([dann_lr_factor(p) for p in ps]) < 0)
    with pytest.raises(ValueError, match="progress"):
        dann_lambda(1.5)


def test_dann_sgd_decays_the_learning_rate_step_by_step():
    model = torch.nn.Linear(3, 2)
    optimizer, scheduler = dann_sgd(model, total_steps=8, lr=0.02)
    assert optimizer.defaults["momentum"] == 0.9
    for k in range(8):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 * dann_lr_factor(k / 8))
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 * 11 ** -0.75)


# --- Deep CORAL and MMD -------------------------------------------------------------------------

def test_deep_coral_loss_is_zero_for_equal_covariances_and_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(40, 5)), rng.normal(size=(30, 5)) @ rng.normal(size=(5, 5))
    ours = deep_coral_loss(torch.tensor(xs), torch.tensor(xt)).item()
    diff = np.cov(xs, rowvar=False) - np.cov(xt, rowvar=False)
    assert ours == pytest.approx((diff ** 2).sum() / (4 * 5 ** 2), rel=1e-10)
    shifted = torch.tensor(xs + 7.0)  # CORAL matches second-order statistics only: a mean shift costs nothing
    assert deep_coral_loss(torch.tensor(xs), shifted).item() == pytest.approx(0.0, abs=1e-12)


def test_mmd_loss_is_zero_for_a_sample_with_itself_and_matches_sklearn_kernels():
    rng = np.random.default_rng(1)
    xs, xt = rng.normal(size=(20, 4)), rng.normal(loc=0.5, size=(25, 4))
    ours = mmd_loss(torch.tensor(xs), torch.tensor(xt), bandwidths=(1.0, 4.0)).item()
    both = np.vstack([xs, xt])
    scale = ((both[:, None] - both[None]) ** 2).sum(-1).mean()
    kernel = lambda a, b: sum(rbf_kernel(a, b, gamma=1 / (scale * w)) for w in (1.0, 4.0))  # noqa: E731
    expected = kernel(xs, xs).mean() + kernel(xt, xt).mean() - 2 * kernel(xs, xt).mean()
    assert ours == pytest.approx(expected, rel=1e-6) and ours > 0
    assert mmd_loss(torch.tensor(xs), torch.tensor(xs)).item() == pytest.approx(0.0, abs=1e-12)
    # Its gradient is finite even though every point is at distance 0 from itself.
    features = torch.tensor(np.vstack([xs, xt]), requires_grad=True)
    mmd_loss(features[:20], features[20:]).backward()
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0


def test_losses_reject_mismatched_features():
    with pytest.raises(ValueError, match="features"):
        deep_coral_loss(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="two rows"):
        mmd_loss(torch.randn(1, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="on must be"):
        DeepCORALStep(1.0, on="pixels")


# --- loaders, steps and the training loop -------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_shift():
    """A few real scikit-learn digits as "source" and the same digits inverted as "target"."""
    from transfer_utils.data.datasets import load_sklearn_digits

    part = load_sklearn_digits().train
    x = (part.x[:192, None] / 16.0).astype(np.float32)
    return x, part.y[:192], (1.0 - x[:128]).astype(np.float32), part.y[:128]


def test_paired_loader_pairs_batches_and_restarts_the_shorter_loader(tiny_shift):
    xs, ys, xt, yt = tiny_shift
    source = loaders.make_loader((xs, ys), 32, shuffle=True, seed=0)
    target = loaders.make_loader((xt, yt), 50, shuffle=True, seed=1)  # labels given, dropped by the steps
    loader = loaders.PairedLoader(source, target, steps_per_epoch=10, carry_over=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 10
    assert all(b[0][0].shape[0] == 32 and b[1][0].shape[1:] == (1, 8, 8) for b in batches)
    assert len(loaders.PairedLoader(source, target)) == 6  # default: one pass over the first loader
    with pytest.raises(ValueError, match="steps_per_epoch"):
        loaders.PairedLoader(source, target, steps_per_epoch=0)


class _OldZippedLoader:
    """methods.deep.ZippedLoader as it was (lesson 05), kept here to prove PairedLoader keeps its order."""

    def __init__(self, source, target, steps_per_epoch=None):
        self.source, self.target = source, target
        self.steps_per_epoch = steps_per_epoch or len(source)
        self._iters = {}

    def __len__(self):
        return self.steps_per_epoch

    def _next(self, name, loader):
        try:
            return next(self._iters[name])
        except (KeyError, StopIteration):
            self._iters[name] = iter(loader)
            return next(self._iters[name])

    def __iter__(self):
        for _ in range(self.steps_per_epoch):
            xs, ys, *_ = self._next("source", self.source)
            target = self._next("target", self.target)
            yield xs, ys, target[0] if isinstance(target, (list, tuple)) else target


class _OldPairedLoader:
    """data.loaders.PairedLoader as it was (lesson 04's joint step)."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def __len__(self):
        return len(self.first)

    def __iter__(self):
        other = iter(self.second)
        for batch in self.first:
            try:
                paired = next(other)
            except StopIteration:
                other = iter(self.second)
                paired = next(other)
            yield batch, paired


def _augmenting_loader(x, y, batch_size, seed, drop_last=False):
    """A shuffled loader whose items also draw from the global torch RNG (like augmentation does)."""
    from transfer_utils.data.image_tensors import ImageDataset

    data = ImageDataset(torch.as_tensor(x), y, transform=lambda image: image + torch.rand(()))
    return loaders.make_loader(data, batch_size, shuffle=True, seed=seed, drop_last=drop_last)


@pytest.mark.parametrize("drop_last", [False, True])
def test_paired_loader_keeps_the_old_orders_of_lessons_04_and_05(tiny_shift, drop_last):
    xs, ys, xt, yt = tiny_shift
    make = lambda: (_augmenting_loader(xs[:150], ys[:150], 32, 0, drop_last),  # noqa: E731
                    _augmenting_loader(xt[:70], yt[:70], 20, 1, drop_last))

    def epochs(loader, n, flat):
        torch.manual_seed(5)
        out = []
        for _ in range(n):
            for batch in loader:
                (x, y), target = ((batch[0], batch[1]), batch[2]) if flat else (batch[0][:2], batch[1])
                out.append((x, y, target[0] if isinstance(target, (list, tuple)) else target))
        return out

    def same(a, b):
        return len(a) == len(b) and all(torch.equal(p, q) for u, v in zip(a, b) for p, q in zip(u, v))

    # lesson 05: both loaders continue across epochs, 7 steps per epoch (not a divisor of either length)
    assert same(epochs(_OldZippedLoader(*make(), steps_per_epoch=7), 6, flat=True),
                epochs(loaders.PairedLoader(*make(), steps_per_epoch=7, carry_over=True), 6, flat=False))
    # lesson 04: each epoch is one fresh pass over the first loader, the second restarted with it
    assert same(epochs(_OldPairedLoader(*make()), 4, flat=False), epochs(loaders.PairedLoader(*make()), 4, flat=False))


def test_paired_loader_does_not_swallow_a_dataset_key_error(tiny_shift):
    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            raise KeyError("a bug in the dataset")

    xs, ys, _, _ = tiny_shift
    loader = loaders.PairedLoader(loaders.make_loader((xs, ys), 32), loaders.make_loader(Broken(), 2))
    with pytest.raises(KeyError, match="a bug in the dataset"):
        next(iter(loader))


def test_dann_step_runs_with_fit_and_lambda_follows_the_schedule(tiny_shift):
    xs, ys, xt, _ = tiny_shift
    torch.manual_seed(0)
    model = DigitCNN(in_channels=1, image_size=8, channels=(8, 8), hidden=16, padding=2)
    loader = loaders.PairedLoader(loaders.make_loader((xs, ys), 32, shuffle=True, seed=0),
                                  loaders.make_loader((xt,), 32, shuffle=True, seed=1), steps_per_epoch=1,
                                  carry_over=True)
    step = DANNStep(total_steps=6)
    optimizer, scheduler = dann_sgd(model, 6)
    history = training.fit(model, loader, optimizer, epochs=6, scheduler=scheduler, step=step,
                           val_loader=loaders.make_loader((xs, ys), 64), restore_best=False, progress=False)
    assert history.steps == step.steps_done == 6
    assert history.column("train_lambda") == pytest.approx([dann_lambda(k / 6) for k in range(6)])
    domain = history.column("train_domain_loss")
    assert len(domain) == 6 and all(0 < d < 2 for d in domain)
    assert all(0 <= a <= 1 for a in history.column("val_accuracy"))  # evaluation batches (x, y) work too


def _shift_loader(tiny_shift):
    xs, ys, xt, _ = tiny_shift
    return loaders.PairedLoader(loaders.make_loader((xs, ys), 32, shuffle=True, seed=0, drop_last=True),
                                loaders.make_loader((xt,), 32, shuffle=True, seed=1, drop_last=True), carry_over=True)


def test_every_method_learns_with_fit_and_scores_each_epoch(tiny_shift):
    xs, ys, xt, yt = tiny_shift
    loader = _shift_loader(tiny_shift)
    evals = {"source": loaders.make_loader((xs, ys), 256), "target": loaders.make_loader((xt, yt), 256)}
    steps = (source_only_step, DANNStep(120), DeepCORALStep(1.0), DeepMMDStep(0.5, on="features"))
    for step in steps:
        torch.manual_seed(0)
        model = DigitCNN(in_channels=1, image_size=8, channels=(8, 16), hidden=32, padding=2)
        optimizer, scheduler = dann_sgd(model, 120, lr=0.05, weight_decay=1e-4)
        history = training.fit(model, loader, optimizer, epochs=120 // len(loader), scheduler=scheduler, step=step,
                               val_loaders=evals, clip_grad_norm=10.0, restore_best=False, progress=False)
        assert history.column("steps") == list(range(6, 121, 6))
        assert {"source_accuracy", "target_accuracy", "target_loss", "train_loss", "lr"} <= set(history.final)
        assert history.final["lr"] == pytest.approx(0.05 * 11 ** -0.75)
        # 120 steps on 192 digits: every method has learned the source (adaptation trades a little of it)
        assert history.final["source_accuracy"] > (0.9 if step is source_only_step else 0.6), step
    assert training.predict(model.features, evals["target"]).shape == (128, model.feature_dim)


@pytest.mark.parametrize("make_step", [lambda: source_only_step, lambda: DANNStep(36)])
def test_one_fit_call_equals_the_old_one_fit_call_per_epoch(tiny_shift, make_step):
    """What ``train_with_curves`` did (one fit per epoch, a ZippedLoader) gives the very same weights."""
    xs, ys, xt, yt = tiny_shift
    evals = {"target": loaders.make_loader((xt, yt), 256)}

    def run(old: bool):
        torch.manual_seed(0)
        model = DigitCNN(in_channels=1, image_size=8, channels=(4, 8), hidden=16, padding=2)
        optimizer, scheduler = dann_sgd(model, 36, lr=0.05, weight_decay=1e-4)
        step = make_step()
        if old:
            loader = _OldZippedLoader(loaders.make_loader((xs, ys), 32, shuffle=True, seed=0, drop_last=True),
                                      loaders.make_loader((xt,), 32, shuffle=True, seed=1, drop_last=True),
                                      steps_per_epoch=4)
            scores = []
            for _ in range(9):
                training.fit(model, loader, optimizer, scheduler=scheduler, step=step, epochs=1, clip_grad_norm=10.0,
                             restore_best=False, progress=False)
                scores.append(training.evaluate(model, evals["target"])["accuracy"])
        else:
            loader = loaders.PairedLoader(
                loaders.make_loader((xs, ys), 32, shuffle=True, seed=0, drop_last=True),
                loaders.make_loader((xt,), 32, shuffle=True, seed=1, drop_last=True), steps_per_epoch=4, carry_over=True)
            history = training.fit(model, loader, optimizer, scheduler=scheduler, step=step, epochs=9, val_loaders=evals,
                                   clip_grad_norm=10.0, restore_best=False, progress=False)
            scores = history.column("target_accuracy")
        return model, scores

    (old, old_scores), (new, new_scores) = run(True), run(False)
    assert old_scores == new_scores
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values()))


def _dann_run(tiny_shift, folder, epochs, resume=False):
    """A DANN run on the tiny shift, checkpointed in ``folder`` (or resumed from it)."""
    xs, ys, xt, yt = tiny_shift
    torch.manual_seed(0)
    model = DigitCNN(in_channels=1, image_size=8, channels=(4, 8), hidden=16, padding=2)
    optimizer, scheduler = dann_sgd(model, 8 * 5, lr=0.05)
    step = DANNStep(8 * 5)
    loader = loaders.PairedLoader(_augmenting_loader(xs, ys, 32, 0, drop_last=True),
                                  _augmenting_loader(xt, yt, 48, 1), steps_per_epoch=5, carry_over=True)
    torch.manual_seed(1)  # the augmentation's random numbers
    history = training.fit(model, loader, optimizer, epochs=epochs, scheduler=scheduler, step=step,
                           val_loaders={"target": loaders.make_loader((xt, yt), 256)}, monitor="target_accuracy",
                           checkpoint_dir=folder, resume_from=folder / "latest.pt" if resume else None,
                           restore_best=False, progress=False)
    return model, history, step


def test_a_resumed_dann_run_equals_an_uninterrupted_one(tiny_shift, tmp_path):
    full_model, full, full_step = _dann_run(tiny_shift, tmp_path / "full", 8)
    _dann_run(tiny_shift, tmp_path / "parts", 3)  # stopped after 3 of 8 epochs
    torch.manual_seed(123)  # a new process: other random states, which the checkpoint puts back
    model, history, step = _dann_run(tiny_shift, tmp_path / "parts", 8, resume=True)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(history.epochs) == drop(full.epochs) and history.steps == full.steps == 40
    assert step.steps_done == full_step.steps_done == 40
    assert (history.best_epoch, history.best_score) == (full.best_epoch, full.best_score)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), full_model.state_dict().values()))


def test_dann_model_shapes_with_and_without_batch_norm():
    for batch_norm in (False, True):
        model = DigitCNN(in_channels=3, image_size=28, channels=(4, 6), hidden=8, batch_norm=batch_norm)
        x = torch.randn(5, 3, 28, 28)
        assert model(x).shape == (5, 10) and model.feature_dim == 6 * 4 * 4
        assert model.domain_logits(model.features(x), 0.5).shape == (5,)
        has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        assert has_bn == batch_norm


def test_steps_reject_batches_of_the_wrong_shape():
    model = DigitCNN(in_channels=1, image_size=8, channels=(4, 4), hidden=8, padding=2)
    with pytest.raises(ValueError, match="PairedLoader"):
        DANNStep(5)(model, (torch.zeros(2, 1, 8, 8),))
