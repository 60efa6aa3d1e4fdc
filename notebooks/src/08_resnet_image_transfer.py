# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · ResNet and EfficientNet image transfer
#
# **Goals.** By the end of this notebook you will
# 1. use an ImageNet-pretrained CNN (EfficientNet-Lite0 offline; ResNet-18 in the `full` profile) three
#    ways on a new image task with few labels: as a **fixed feature extractor**, **fine-tuned** end to
#    end, and the same architecture trained **from scratch**, and know what each costs in accuracy and
#    seconds;
# 2. look inside a CNN (feature maps, Grad-CAM) and see what an ImageNet network knows about photos;
# 3. reproduce, at laptop scale, the layer-transferability experiment of Yosinski et al. (2014):
#    pretrain a torchvision ResNet on five clothing classes, transfer it to the five others with the
#    first *b* blocks frozen, and read off where transferred features stop helping;
# 4. measure how much ImageNet features help on grey, low-resolution clothing, and where they should help more.
#
# **Prerequisites.** Lesson 01 (scratch vs frozen features vs fine-tuning) and the training loop of
# lesson 00/`transfer_utils.training`; a little about convolutional networks. Lesson 04 teaches the
# fine-tuning strategies (freezing schedules, layer-wise rates, L2-SP) used loosely here.
#
# **Time.** for you ≈ 50 min reading + 35 min exercises; for the machine, smoke ≈ 0.7 min · default ≈ 4.9 min on a 2-core CPU (measured by `bench/lesson_times.py`).

# %%
import copy
import inspect
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from IPython.display import Markdown, display
from tqdm.auto import tqdm

# %% tags=["parameters"]
seed: int = 0  # seeds the labelled samples, the new heads and the data order
device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda" or "mps"
profile: str = os.environ.get("COURSE_PROFILE", "default")  # "smoke" (CI, ~1 min), "default" (laptop), "full"
metrics_path: str = ""  # where the metrics JSON goes; "" means data/runs/<profile>/08_resnet_image_transfer.metrics.json
backbone: str = "auto"  # ImageNet CNN of part A: "auto" (efficientnet_lite0; resnet18 in the full profile), "efficientnet_lite0", "resnet18"
image_size: int = 64  # pixels (square) the 28×28 clothing images are resized to for the ImageNet CNN
k_a: int = 10  # part A: labelled images per class (10 classes)
k: int = 10  # part B: labelled images per target class (5 classes)
width: int = 16  # part B: channels of the narrow ResNet's first block (doubling in each of the four blocks)

# %%
from transfer_utils.data import image_tensors
from transfer_utils.models import small_resnet
from transfer_utils.data import datasets
from transfer_utils.methods import parameter
from transfer_utils.core import plots
from transfer_utils.models import source_model
from transfer_utils import training
from transfer_utils.training.side_by_side import run_side_by_side
from transfer_utils import vision
from transfer_utils.core.exercises import check_function
from transfer_utils.models.parts import count_parameters
from transfer_utils.models.pretrained import load_image_backbone
from transfer_utils.core.evidence import Claims, compare, constant_baseline
from transfer_utils.core.runtime import ParameterError, check_choice, check_int, check_seed, start_lesson

lesson = start_lesson("08_resnet_image_transfer", seed=seed, device=device, profile=profile,
                      metrics_path=metrics_path)
claims = Claims()  # the sentences this run's numbers decide, shown in the summary and saved with the metrics
check_choice("backbone", backbone, ("auto", "efficientnet_lite0", "resnet18"))
check_int("image_size", image_size, low=32, high=224)
check_int("k_a", k_a, low=1, high=500)
check_int("k", k, low=1, high=1000)
check_int("width", width, low=4, high=64)
plots.setup()
backbone_name = backbone if backbone != "auto" else lesson.pick(smoke="efficientnet_lite0",
                                                               default="efficientnet_lite0", full="resnet18")
settings = lesson.pick(
    smoke={"test_a": 300, "val_a": 300, "steps_a": 30, "seeds_a": 1, "seeds_b": 1, "steps_b": 60, "test_b": 1000},
    default={"test_a": 500, "val_a": 500, "steps_a": 50, "seeds_a": 3, "seeds_b": 3, "steps_b": 50, "test_b": 1000},
    full={"test_a": 5000, "val_a": 2000, "steps_a": 300, "seeds_a": 5, "seeds_b": 5, "steps_b": 600, "test_b": 5000},
)
check_seed(seed, max(settings["seeds_a"], settings["seeds_b"]))  # parts A and B use seed, seed + 1, ...
if backbone_name == "resnet18":  # its ImageNet weights are an online asset: stop here if they are missing
    from transfer_utils.data.assets import AssetMissingError
    from transfer_utils.models.pretrained import resnet18_weights_file
    try:
        resnet18_weights_file()
    except AssetMissingError:
        raise ParameterError(f"parameter 'backbone' = {backbone!r} needs torchvision's ResNet-18 weights, which are not "
                             "on this machine (python -m transfer_utils prefetch resnet18); use 'efficientnet_lite0'") from None
print(lesson, "| backbone:", backbone_name, "|", settings)

# %% [markdown]
# ## 1. Two questions, one dataset
#
# The course's sources describe image transfer in two sentences: take a CNN pretrained on ImageNet
# (ResNet, VGG), use it as a feature extractor and train a new classifier on top, or fine-tune its
# weights on the new task. Both are true and both leave out what you need to decide: *how much* does
# each help, at what cost, and when does it not help at all? We measure it on real images:
# **Fashion-MNIST**, 70,000 grey 28×28 photos of clothing in ten classes (installed offline by the
# Debian package `dataset-fashion-mnist`).
#
# * **Part A** takes a real ImageNet CNN to clothing with ten labelled images per class.
# * **Part B** asks *which layers* transfer. No ImageNet ResNet installs offline, so we do what
#   Yosinski et al. did, at CPU scale: pretrain a torchvision ResNet ourselves on five clothing
#   classes (the *source* task) and transfer it to the other five (the *target* task).

# %%
fashion = datasets.load_fashion_mnist()
print(fashion.summary())
fig, axes = plt.subplots(2, 10, figsize=(10, 2.4))
for label, column in enumerate(axes.T):
    rows = np.flatnonzero(fashion.train.y == label)[:2]
    for ax, row in zip(column, rows):
        ax.imshow(fashion.train.x[row], cmap="gray_r")
        ax.set(xticks=[], yticks=[])
    column[0].set_title(fashion.classes[label], fontsize=8)
fig.suptitle("Fashion-MNIST: two training images per class (28×28 grey)")
plt.show()

# %% [markdown]
# ## 2. Part A: an ImageNet CNN on a new task
#
# ### 2a. What the pretrained network knows
#
# The offline ImageNet CNN is **EfficientNet-Lite0** (4.7M parameters, 1,000 ImageNet classes; with
# the `full` profile and the weights cached, torchvision's ResNet-18 instead). Before transferring it,
# ask it about the colour photos that ship with scikit-image. `backbone.preprocess` resizes and scales
# images the way its weights expect; each photo is first cut to its central square so resizing does
# not squash it.

# %%
image_net = load_image_backbone(backbone_name)
print(f"{image_net.name}: {count_parameters(image_net.classifier):,} parameters, "
      f"{image_net.num_features} features before the ImageNet classifier")
photos = datasets.load_photos([name for name in datasets.PHOTO_NAMES if name != "cat"])  # "cat" is chelsea again
photo_batch = image_net.preprocess(np.stack([image_tensors.square_photo(p, 224) for p in photos.values()]), 224)
with torch.no_grad():
    probabilities = image_net.classifier.eval()(photo_batch).softmax(dim=1)
top_p, top_i = probabilities.topk(3, dim=1)
photo_table = pd.DataFrame({
    "photo": list(photos),
    "top-1 ImageNet class": [image_net.categories[i] for i in top_i[:, 0]],
    "p(top-1)": top_p[:, 0].numpy().round(3),
    "2nd and 3rd": [", ".join(image_net.categories[i] for i in row[1:]) for row in top_i],
})
photo_table

# %%
everyday = ["chelsea", "coffee", "astronaut", "rocket"]
confidence = photo_table.set_index("photo")["p(top-1)"]
print(f"mean top-1 probability: everyday photos {confidence[everyday].mean():.3f}, "
      f"scientific images {confidence.drop(everyday).mean():.3f}")
display(Markdown(claims.claim(
    "less_confident_far_from_imagenet", confidence.drop(everyday).mean() < confidence[everyday].mean(),
    f"The network's mean top-1 probability was lower on the scientific images ({confidence.drop(everyday).mean():.3f}) "
    f"than on the everyday photos ({confidence[everyday].mean():.3f}), on these {len(confidence)} images.",
    f"The network was NOT less confident on the scientific images ({confidence.drop(everyday).mean():.3f}) than on "
    f"the everyday photos ({confidence[everyday].mean():.3f}) here.")))

# %% [markdown]
# Photos of things ImageNet has classes for (a cat, a cup of coffee, a rocket) should get fitting names:
# check the table. ImageNet has no *astronaut*, so whatever the network answers for it is the nearest
# thing it knows. The Hubble deep field, a stained tissue slide, a retina scan and a colour wheel are
# far from every ImageNet class: the network still answers (a classifier always does), and one would
# expect it to be less sure (the line above says whether it was, on these few images). A classifier
# only knows its own classes; its *features* are what transfer.
#
# **Grad-CAM** shows where the network looks when it names a class: weight each channel of the last
# convolutional layer by how much the class score grows with it (the mean gradient), sum, keep the
# positive part (Selvaraju et al., 2017). `vision.grad_cam` does this with two hooks:

# %%
print(inspect.getsource(vision.grad_cam).split('"""')[-1].strip())

# %%
LOOK_INSIDE = {"efficientnet_lite0": ("_bn0", "_bn1"), "resnet18": ("layer1", "layer4")}  # early, last layer
early_layer, last_layer = (image_net.classifier.get_submodule(n) for n in LOOK_INSIDE[image_net.name])
shown = ["chelsea", "coffee", "rocket", "astronaut"]
rows = [list(photos).index(name) for name in shown]
cams, cam_classes = vision.grad_cam(image_net.classifier, last_layer, photo_batch[rows])
fig, axes = plt.subplots(1, len(shown), figsize=(10, 2.9))
for ax, name, cam, label in zip(axes, shown, cams, cam_classes):
    ax.imshow(image_tensors.square_photo(photos[name], 224))
    ax.imshow(cam.numpy(), cmap="jet", alpha=0.45)
    ax.set(title=f"{name} → {image_net.categories[label]}", xticks=[], yticks=[])
fig.suptitle("Grad-CAM: where the ImageNet network looks for its top-1 class")
plt.show()

# %% [markdown]
# ### 2b. The new task: ten clothing classes, `k_a` labels each
#
# Clothing is a long way from ImageNet: grey, 28 pixels, a centred object on a black background. The
# network wants 3-channel images, so each grey image is repeated into three channels and resized to
# `image_size` pixels (smaller than ImageNet's 224 to keep a CPU run short).

#
# Every condition below is run on `seeds_a` seeds: each seed draws its own `k_a` labelled images per class
# and starts its own new head, so each comparison is made several times, paired by seed. A validation
# sample (from Fashion-MNIST's validation split) is where the linear models' regularisation is chosen.

# %%
test_a = datasets.sample_n(fashion.test, settings["test_a"], seed=0)
val_a = datasets.sample_n(fashion.val, settings["val_a"], seed=0)
x_test_a = image_net.preprocess(test_a.x, image_size)
x_val_a = image_net.preprocess(val_a.x, image_size)
seeds_a = [lesson.seed + i for i in range(settings["seeds_a"])]
print(f"labelled: {k_a} images per class, drawn anew for each of the seeds {seeds_a}; "
      f"validation: {len(val_a)} images; test: {len(test_a)} images → tensor {tuple(x_test_a.shape)}")
test_loader_a = image_tensors.image_loader(x_test_a, test_a.y, 100)
acc_constant_a = constant_baseline(test_a.y, "accuracy")  # always answering the commonest test class
print(f"a constant predictor scores {acc_constant_a:.3f} on these test images")
rows_a: list[dict] = []

# %% [markdown]
# **Baseline that knows nothing:** logistic regression on the raw 784 pixels. **Fixed feature
# extractor:** the pretrained network, frozen, turns every image into a vector (1,280 numbers for
# EfficientNet-Lite0, the input of its ImageNet classifier); a logistic regression learns on top. The
# features are computed once, so this is cheap; it also means no augmentation. Both linear models get
# the same tuning budget: their regularisation C is picked from the same grid on the validation images.

# %%
C_GRID = (0.01, 0.1, 1.0)
pixels = lambda part: part.x.reshape(len(part), -1) / 255.0  # noqa: E731
started = time.perf_counter()
features_val = training.predict(image_net.features, x_val_a.split(128)).numpy()  # batches of 128 images
features_test = training.predict(image_net.features, x_test_a.split(128)).numpy()
features_eval_seconds = time.perf_counter() - started


def linear_on(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, test_x: np.ndarray) -> tuple[float, float]:
    """Logistic regression with C picked on the validation images: (C, test accuracy)."""
    fits = {C: LogisticRegression(C=C, max_iter=3000).fit(train_x, train_y) for C in C_GRID}
    best_C = max(C_GRID, key=lambda C: fits[C].score(val_x, val_a.y))  # the first C on a tie
    return best_C, fits[best_C].score(test_x, test_a.y)


for run_seed in seeds_a:
    labelled = datasets.sample_per_class(fashion.train, k_a, seed=run_seed)
    started = time.perf_counter()
    C, accuracy = linear_on(pixels(labelled), labelled.y, pixels(val_a), pixels(test_a))
    rows_a.append({"condition": "raw pixels + logistic regression", "seed": run_seed, "accuracy": accuracy,
                   "C (picked on validation)": C, "seconds": time.perf_counter() - started})
    started = time.perf_counter()
    x_labelled = image_net.preprocess(labelled.x, image_size)
    train_features = training.predict(image_net.features, x_labelled.split(128)).numpy()
    C, accuracy = linear_on(train_features, labelled.y, features_val, features_test)
    rows_a.append({"condition": "fixed feature extractor", "seed": run_seed, "accuracy": accuracy,
                   "C (picked on validation)": C, "seconds": time.perf_counter() - started})
pd.DataFrame(rows_a).round(3)

# %% [markdown]
# **Fine-tuning** puts a new 10-class head on the pretrained body and trains both, with random shifts
# and mirror images as augmentation (`image_tensors.image_loader(..., augment=True)`). Two settings are
# fixed by hand here, following the usual advice for few images, and are **not** tuned by this lesson:
# a small learning rate for the pretrained body (2e-4, ten times less than the new head's), so that the
# pretrained filters move gently, and **batch-norm statistics kept at their pretrained values**
# (`frozen_bn_stats=True`). Batch norm normalises every layer with a running mean and variance; the worry
# is that re-estimating them from a few batches of grey clothing undoes more than the gradient steps
# gain. These are conventions, set before looking at any score, not choices this lesson makes: tuning
# them fairly would mean a validation grid for fine-tuning *and* for the scratch baseline, which does
# not fit a laptop budget (exercise: run it with `-p` overrides and pick on the validation images, never
# on the test images). **From scratch** is the same architecture with random weights
# (`small_resnet.reinitialised`), the same data, augmentation and steps; it has no statistics worth keeping
# and nothing to protect, so all of it learns at one conventional rate, 3e-3.

# %%
def train_image_net(features: torch.nn.Module, lr_body: float, lr_head: float, frozen_bn_stats: bool,
                    run_seed: int) -> dict:
    """Train body + new head on one seed's labelled images with augmentation; test accuracy and seconds."""
    started = time.perf_counter()
    labelled = datasets.sample_per_class(fashion.train, k_a, seed=run_seed)
    x_labelled = image_net.preprocess(labelled.x, image_size)
    torch.manual_seed(run_seed)
    model = small_resnet.TransferNet(features, image_net.num_features, len(fashion.classes), frozen_bn_stats)
    small_resnet.set_batchnorm_momentum(model, 0.1)  # EfficientNet ships 0.01: too slow for a few hundred steps
    model.to(lesson.device)
    optimizer = torch.optim.Adam([{"params": model.head.parameters(), "lr": lr_head},
                                  {"params": model.features.parameters(), "lr": lr_body}])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings["steps_a"])
    loader = image_tensors.image_loader(x_labelled, labelled.y, 25, augment=True, shuffle=True, seed=run_seed,
                                        pad=image_size // 14)
    training.train_steps(model, loader, optimizer, settings["steps_a"], scheduler=schedule)
    accuracy = training.evaluate(model, test_loader_a, device=lesson.device)["accuracy"]
    return {"accuracy": accuracy, "seconds": time.perf_counter() - started}


for run_seed in tqdm(seeds_a, desc="part A seeds"):
    for name, (start, lr_body, lr_head, frozen_stats) in {
            "full fine-tuning": (copy.deepcopy(image_net.features), 2e-4, 2e-3, True),
            "same network from scratch": (small_resnet.reinitialised(image_net.features, run_seed), 3e-3, 3e-3, False),
    }.items():
        rows_a.append({"condition": name, "seed": run_seed,
                       **train_image_net(start, lr_body, lr_head, frozen_stats, run_seed)})
runs_a = pd.DataFrame(rows_a)
table_a = runs_a.groupby("condition", sort=False)[["accuracy", "seconds"]].mean()
table_a.insert(1, "accuracy std", runs_a.groupby("condition", sort=False)["accuracy"].std())
acc_of = {name: runs_a[runs_a.condition == name].sort_values("seed")["accuracy"].tolist() for name in table_a.index}
table_a.round(3)

# %%
fig, ax = plt.subplots(figsize=(6.4, 2.6))
ax.barh(table_a.index, table_a["accuracy"], color=["grey", "tab:blue", "tab:green", "tab:red"])
ax.errorbar(table_a["accuracy"], range(len(table_a)), xerr=table_a["accuracy std"].fillna(0), fmt="none", color="black")
for i, (accuracy, seconds) in enumerate(zip(table_a["accuracy"], table_a["seconds"])):
    ax.text(accuracy + 0.04, i, f"{accuracy:.3f}  ({seconds:.0f} s)", va="center", fontsize=9)
ax.set(xlim=(0, 1.05), xlabel=f"test accuracy ({len(test_a)} images)",
       title=f"{image_net.name} → Fashion-MNIST, {k_a} labels per class, {len(seeds_a)} seed(s)")
ax.invert_yaxis()
plt.show()

acc_raw = table_a.loc["raw pixels + logistic regression", "accuracy"]
acc_feature_extractor = table_a.loc["fixed feature extractor", "accuracy"]
acc_finetune = table_a.loc["full fine-tuning", "accuracy"]
acc_scratch = table_a.loc["same network from scratch", "accuracy"]
RAW, FEATURES, FINETUNE, SCRATCH = table_a.index
print(f"ImageNet features vs raw pixels: {acc_feature_extractor - acc_raw:+.3f}; "
      f"fine-tuning vs fixed features: {acc_finetune - acc_feature_extractor:+.3f}; "
      f"pretrained vs random start of the same network: {acc_finetune - acc_scratch:+.3f}; "
      f"constant predictor {acc_constant_a:.3f}")
# one-time cost of the frozen extractor (test and validation features) plus its per-seed fits
seconds_feature_extractor = table_a.loc[FEATURES, "seconds"] + features_eval_seconds
seconds_finetune = table_a.loc[FINETUNE, "seconds"]
part_a_comparisons = {
    "features_vs_raw_a": compare(acc_of[FEATURES], acc_of[RAW], "ImageNet features + logistic regression",
                                 "raw pixels + logistic regression"),
    "finetune_vs_features_a": compare(acc_of[FINETUNE], acc_of[FEATURES], "fine-tuning", "the fixed feature extractor"),
    "pretrained_vs_scratch_a": compare(acc_of[FINETUNE], acc_of[SCRATCH], "the pretrained start",
                                       "the same network from random weights"),
}
display(Markdown("\n".join("- " + text for text in [
    f"Constant predictor on these test images: {acc_constant_a:.3f}.",
    *[claims.comparison(name, result) for name, result in part_a_comparisons.items()],
    claims.claim(
        "scratch_baseline_trained", acc_scratch > acc_constant_a + 0.02,
        f"The same network from random weights learnt something: {acc_scratch:.3f} vs the constant predictor's "
        f"{acc_constant_a:.3f}.",
        f"The same network from random weights scored {acc_scratch:.3f}, no better than the constant predictor "
        f"({acc_constant_a:.3f}): it failed to train in {settings['steps_a']} steps, so it is no evidence for the "
        "pretrained start."),
    claims.claim(
        "finetune_costs_more_seconds", seconds_finetune > seconds_feature_extractor,
        f"Fine-tuning took {seconds_finetune / seconds_feature_extractor:.1f} times the seconds of the fixed feature "
        f"extractor ({seconds_finetune:.1f} s vs {seconds_feature_extractor:.1f} s).",
        f"Fine-tuning did NOT take longer than the fixed feature extractor ({seconds_finetune:.1f} s vs "
        f"{seconds_feature_extractor:.1f} s)."),
])))

# %% [markdown]
# How to read this:
#
# * **ImageNet features vs raw pixels.** A linear model on 1,280 pretrained features competes with one on
#   the 784 raw pixels. Fashion-MNIST's classes differ by silhouette, which pixels already show, while
#   ImageNet's features were learnt for textures and colours of photos; that is why they may add little
#   here.
# * **Fine-tuning vs the frozen probe.** Fine-tuning lets the pretrained filters adapt to the new images,
#   if the body learns gently enough not to forget what made it useful.
# * **Pretrained vs random** for the same network is the cleanest transfer-vs-scratch comparison (same
#   network, same data, same steps): a hundred images are few for a network of millions of weights.
# * **Seconds:** the frozen extractor costs one forward pass per image; fine-tuning and training from
#   scratch cost many forward *and* backward passes.
#
# The body rate and the batch-norm setting were conventions, not tuned: a different setting may do better
# or worse, and only a validation grid (for the scratch baseline too) would say. Where would ImageNet features be expected to shine? On photos like those of section 2a: real colour
# scenes of objects ImageNet has seen. Part B tries the other lever: a *source task close to the target*.
#
# ### 2c. A look inside: feature maps
#
# The first layers of a CNN are edge, blob and colour detectors, which is why they transfer to almost
# any image. Here are the outputs of the pretrained network's first layer (a few of its channels) for a
# sneaker from the test set:

# %%
sneaker = int(np.flatnonzero(test_a.y == fashion.classes.index("Sneaker"))[0])
maps = vision.feature_maps(image_net.classifier, early_layer, x_test_a[sneaker:sneaker + 1])[0]
fig, axes = plt.subplots(1, 7, figsize=(10, 1.9))
axes[0].imshow(test_a.x[sneaker], cmap="gray_r")
axes[0].set(title="input", xticks=[], yticks=[])
for i, ax in enumerate(axes[1:]):
    ax.imshow(maps[i].numpy(), cmap="viridis")
    ax.set(title=f"channel {i}", xticks=[], yticks=[])
fig.suptitle(f"First-layer feature maps of {image_net.name} ({tuple(maps.shape)} for one image)")
plt.show()

# %% [markdown]
# ## 3. Part B: which layers transfer? (Yosinski et al., 2014, at CPU scale)
#
# ### 3a. A ResNet pretrained on the source classes
#
# The network is torchvision's `ResNet` with `BasicBlock`s, one block per stage and `width` channels
# in the first block (16, 32, 64, 128 with the default): a narrow ResNet-10. ImageNet's stem (7×7
# convolution with stride 2, then max-pooling) would shrink 28 pixels to 7 before the first block, so
# the stem is a 3×3 convolution with stride 1 and the blocks see 28, 14, 7 and 4 pixels.
#
# It is pretrained on the **source classes** T-shirt, Trouser, Pullover, Dress and Coat. Pretraining takes
# minutes on a CPU (the time is printed below), so `source_model.pretrained_source_model` caches the
# weights under `data/cache/source_resnet/`: the file name and contents carry a hash of the settings and
# the training images, and a file that is missing, stale or damaged is retrained (lesson 04 shares the
# same file).

# %%
config = source_model.source_config(lesson.profile, width=width)
source = source_model.pretrained_source_model(config, device=lesson.device)
print(config)
print(f"source test accuracy {source.source_accuracy:.3f} | {'from the cache' if source.cached else 'trained now'} "
      f"({source.train_seconds:.0f} s of pretraining) | {count_parameters(source.model):,} parameters")

# %% [markdown]
# ### 3b. Transfer to the target classes with the first *b* blocks frozen
#
# The **target task** is the five other classes (Sandal, Shirt, Sneaker, Bag, Ankle boot) with `k`
# labelled images per class. Every run starts from the same pretrained network with a new 5-class head
# and trains for the same number of steps with augmentation:
#
# * **frozen b** (b = 1…4): the stem and the first *b* blocks are frozen (no gradient, batch-norm
#   statistics fixed too); the blocks above are trained. b = 4 leaves only the head: a linear probe on
#   the pretrained features;
# * **fine-tune all** (b = 0): every layer trains;
# * **scratch**: the same architecture from random weights.
#
# The new head learns at 1e-2 and the rest at 1e-3 (Adam, cosine decay); scratch gets the same rates.
# `parameter.freeze_stages` switches the gradients off:

# %%
print(inspect.getsource(parameter.freeze_stages))

# %%
target_train = source_model.class_subset(fashion.train, source_model.TARGET_CLASSES)
target_test = datasets.sample_n(source_model.class_subset(fashion.test, source_model.TARGET_CLASSES),
                                settings["test_b"], seed=0)
test_loader_b = image_tensors.image_loader(image_tensors.grey_tensor(target_test.x), target_test.y, 500)
CONDITIONS = ["scratch", 0, 1, 2, 3, 4]  # 0 = fine-tune all, b = blocks frozen


def transfer_run(condition: str | int, run_seed: int) -> dict:
    """Train one condition on k labelled target images per class; test accuracy and seconds."""
    started = time.perf_counter()
    labelled = datasets.sample_per_class(target_train, k, seed=run_seed)
    loader = image_tensors.image_loader(image_tensors.grey_tensor(labelled.x), labelled.y, 50, augment=True, shuffle=True,
                                 seed=run_seed)
    torch.manual_seed(run_seed)
    if condition == "scratch":
        model = small_resnet.SmallResNet(num_classes=5, width=width)
    else:
        model = copy.deepcopy(source.model)
        small_resnet.new_head(model, 5, seed=run_seed)
        parameter.freeze_stages(model.stages(), condition + 1 if condition > 0 else 0)  # stem + b blocks
    model.to(lesson.device)
    body = [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("fc.")]
    groups = [{"params": model.fc.parameters(), "lr": 1e-2}] + ([{"params": body, "lr": 1e-3}] if body else [])
    optimizer = torch.optim.Adam(groups)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings["steps_b"])
    training.train_steps(model, loader, optimizer, settings["steps_b"], scheduler=schedule)
    return {"condition": str(condition), "seed": run_seed,
            "accuracy": training.evaluate(model, test_loader_b, device=lesson.device)["accuracy"],
            "trainable": count_parameters(model, trainable_only=True), "seconds": time.perf_counter() - started}


grid = [(c, lesson.seed + s) for s in range(settings["seeds_b"]) for c in CONDITIONS]
# the runs are independent and this narrow ResNet keeps only part of two cores busy: one run per core
runs_b = pd.DataFrame(run_side_by_side(transfer_run, grid, device=lesson.device, desc="part B transfer runs"))
summary_b = runs_b.groupby("condition", sort=False).agg(
    accuracy=("accuracy", "mean"), spread=("accuracy", "std"), trainable=("trainable", "first"),
    seconds=("seconds", "mean"))
summary_b.round(3)

# %%
frozen = summary_b.loc[[str(b) for b in range(5)]]
fig, ax = plt.subplots()
for s, group in runs_b[runs_b.condition != "scratch"].groupby("seed"):
    ax.plot(group.condition.astype(int), group.accuracy, "o", color="tab:blue", alpha=0.35)
ax.errorbar(range(5), frozen.accuracy, yerr=frozen.spread.fillna(0), marker="o", capsize=4,
            label="transferred (mean ± std over seeds)")
scratch_mean, scratch_std = summary_b.loc["scratch", "accuracy"], np.nan_to_num(summary_b.loc["scratch", "spread"])
ax.axhline(scratch_mean, color="tab:red", linestyle="--", label=f"from scratch ({scratch_mean:.3f})")
ax.axhspan(scratch_mean - scratch_std, scratch_mean + scratch_std, color="tab:red", alpha=0.1)
ax.set_xticks(range(5), ["0\n(fine-tune all)", "1", "2", "3", "4\n(head only)"])
ax.set(xlabel="blocks frozen (b)", ylabel=f"target test accuracy ({len(target_test)} images)",
       title=f"Layer transfer, source classes 0-4 → target 5-9, {k} labels per class")
ax.legend(loc="lower left", fontsize="small")
plt.show()

# %%
acc_scratch_b = float(summary_b.loc["scratch", "accuracy"])
acc_finetune_b = float(summary_b.loc["0", "accuracy"])
acc_by_frozen_blocks = [float(summary_b.loc[str(b), "accuracy"]) for b in range(1, 5)]
best_b = int(np.argmax(acc_by_frozen_blocks)) + 1
print(f"scratch {acc_scratch_b:.3f} | fine-tune all {acc_finetune_b:.3f} | frozen b=1..4 "
      + " ".join(f"{a:.3f}" for a in acc_by_frozen_blocks) + f" | best b = {best_b}")
print("blocks whose frozen features still beat scratch (means, no spread):",
      [b for b, a in enumerate(acc_by_frozen_blocks, start=1) if a > acc_scratch_b])
acc_constant_b = constant_baseline(target_test.y, "accuracy")
print(f"a constant predictor scores {acc_constant_b:.3f} on the target test images")
per_seed = runs_b.pivot(index="seed", columns="condition", values="accuracy")  # one row per seed
display(Markdown("\n".join("- " + text for text in [
    claims.comparison("finetune_all_vs_scratch_b", compare(per_seed["0"], per_seed["scratch"],
                                                           "fine-tune all (b = 0)", "scratch")),
    claims.comparison("frozen_2_vs_finetune_all_b", compare(per_seed["2"], per_seed["0"],
                                                            "first 2 blocks frozen", "fine-tune all (b = 0)")),
    claims.comparison("head_only_vs_finetune_all_b", compare(per_seed["4"], per_seed["0"],
                                                             "head only (b = 4)", "fine-tune all (b = 0)")),
    claims.comparison("head_only_vs_scratch_b", compare(per_seed["4"], per_seed["scratch"],
                                                        "head only (b = 4)", "scratch")),
    claims.claim("part_b_above_constant", min(acc_scratch_b, *acc_by_frozen_blocks, acc_finetune_b) > acc_constant_b,
                 f"Every part B condition scored above the constant predictor ({acc_constant_b:.3f}).",
                 f"At least one part B condition did NOT score above the constant predictor ({acc_constant_b:.3f})."),
])))

# %% [markdown]
# How to read the curve (the sentences above say what this run's seeds support; b = 2 and b = 4 are
# compared with fine-tuning everything because they were fixed before looking at the results):
#
# * **Transfer vs scratch** with few labels: does fine-tuning the pretrained network beat the same
#   network from random weights by more than the seed-to-seed spread?
# * **General vs specific layers.** Yosinski et al.'s hypothesis: the stem and first blocks hold general
#   filters (edges, textures of cloth) that fit the new classes too, and freezing them leaves fewer
#   weights to overfit 50 images; the top block encodes *which of the source classes* an image is, a
#   specific feature that does not serve sandals and bags, so freezing it as well (b = 4, a linear head
#   on the pretrained features) should hurt. Features go from general to specific with depth, and
#   transfer turns from help to harm where they become specific.
# * Read the error bars: a difference between neighbouring b that is smaller than the spread over seeds
#   is not evidence of anything. With fewer than three seeds (the smoke profile) no comparison is decided.
#
# Part A and part B are different tasks (ten classes vs five, different test images), so their
# accuracies cannot be compared directly. The expectation from Yosinski et al. is that the closer the
# source task to the target, the more layers transfer; testing it here would need the same target task
# for both sources.

# %% [markdown]
# ## 4. Exercises
#
# Each exercise has an instant check against the course's reference answers (`transfer_utils.solutions`),
# on several inputs, edge cases included. In the student version (`python -m transfer_utils student`) the
# solutions are removed, and each check says "not attempted" until you fill in its function.
#
# **Exercise 1 (warm-up).** Write the preprocessing the ImageNet network needs for grey uint8 images
# `(N, H, W)`: repeat the channel three times, resize to `size`×`size` (bilinear, antialiased, only when
# the size changes), and scale with `image_net.mean` / `image_net.std` (given in 0-255 pixel units).
# Pretrained weights only work on inputs scaled the way they were trained on, so this is the first line
# of every image transfer. The check compares with `image_net.preprocess` on real images, one image kept
# at 28 pixels, and images that are all black or all white.

# %%
# NBVAL_CHECK_OUTPUT
from transfer_utils.core.exercises import check_prediction
from transfer_utils.solutions import lesson08 as solutions


def my_preprocess(images: np.ndarray, size: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1).repeat(1, 3, 1, 1)
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(image_net.mean).view(1, 3, 1, 1)
    std = torch.tensor(image_net.std).view(1, 3, 1, 1)
    return (x - mean) / std
    ### END SOLUTION


preprocess_cases = [(fashion.test.x[:3].copy(), 32), (fashion.test.x[3:5].copy(), 48), (fashion.test.x[5:6].copy(), 28),
                    (np.zeros((2, 28, 28), dtype=np.uint8), 64), (np.full((1, 28, 28), 255, dtype=np.uint8), 40)]
check_function(my_preprocess, image_net.preprocess, preprocess_cases, name="exercise 1 (ImageNet preprocessing)", atol=1e-4)

# %% [markdown]
# **Exercise 2 (apply).** Before transferring a pretrained network, look at what it already makes of your
# images. Write `my_imagenet_names(backbone, photos)`: the top-1 ImageNet class name the network gives
# each RGB uint8 photo `(H, W, 3)` of any size. Cut each photo to its central square at 224 pixels
# (`image_tensors.square_photo`), scale the batch with `backbone.preprocess`, run `backbone.classifier`
# in `eval()` mode without gradients, and look the names up in `backbone.categories`. The check tries
# photos of section 2a, a Fashion-MNIST sneaker made RGB (what does an ImageNet network call it?), and an
# all-black photo that is not square.

# %%
# NBVAL_CHECK_OUTPUT
def my_imagenet_names(backbone, photos: list[np.ndarray]) -> list[str]:
    ### BEGIN SOLUTION
    x = backbone.preprocess(np.stack([image_tensors.square_photo(p, 224) for p in photos]), 224)
    with torch.no_grad():
        logits = backbone.classifier.eval()(x)
    return [backbone.categories[int(i)] for i in logits.argmax(dim=1)]
    ### END SOLUTION


grey_sneaker = np.repeat(test_a.x[sneaker][:, :, None], 3, axis=2)  # the sneaker of section 2c, 28×28×3
names_cases = [(image_net, [photos["coffee"], photos["rocket"]]), (image_net, [photos["chelsea"]]),
               (image_net, [grey_sneaker]), (image_net, [np.zeros((60, 90, 3), dtype=np.uint8)])]
check_function(my_imagenet_names, solutions.imagenet_names, names_cases, name="exercise 2 (what the network sees)")

# %% [markdown]
# **Exercise 3 (apply).** How many parameters does the optimizer train in part B when the stem and the
# first `b` blocks of the narrow ResNet are frozen? Follow section 3b's convention: b = 0 freezes nothing
# (fine-tune all), b = 4 leaves only the head. Count them from the modules (`model.conv1`, `model.bn1`,
# `model.layer1` … `model.layer4`, `model.fc`), without calling `parameter.freeze_stages`: this count is
# what "a linear probe trains a few hundred weights, fine-tuning all of them" means in numbers. The check
# tries every b from 0 to 4 and a narrower network.

# %%
# NBVAL_CHECK_OUTPUT
def my_trainable_when_frozen(model: small_resnet.SmallResNet, b: int) -> int:
    ### BEGIN SOLUTION
    frozen = ([model.conv1, model.bn1] if b > 0 else []) + [getattr(model, f"layer{i}") for i in range(1, b + 1)]
    frozen_ids = {id(p) for module in frozen for p in module.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in frozen_ids)
    ### END SOLUTION


trainable_cases = [(small_resnet.SmallResNet(5, width=16), b) for b in range(5)] + [(small_resnet.SmallResNet(5, width=8), 2)]
check_function(my_trainable_when_frozen, solutions.trainable_when_frozen, trainable_cases,
               name="exercise 3 (trainable parameters)")

# %% [markdown]
# **Exercise 4 (experiment).** Section 2b trained two logistic regressions on centred clothing: one on the
# 784 raw pixels, one on the frozen ImageNet network's features. Now move every test image 4 pixels to the
# right (the garments move, their labels do not; the strip that comes in on the left is background).
# Predict before you run: which model loses more test accuracy, "raw pixels" or "ImageNet features", or
# do both lose "about the same"? Put your prediction in `my_prediction`, then run the cell below it,
# which refits both models of section 2b's first seed (same labelled images, same C) and scores them on
# (up to) the first 300 test images, as they are and moved.

# %%
def my_prediction() -> str:
    ### BEGIN SOLUTION
    return "raw pixels"
    ### END SOLUTION


# %%
def moved_right(images: np.ndarray, pixels: int) -> np.ndarray:
    """Images shifted ``pixels`` to the right; the strip that comes in on the left is background (0)."""
    moved = np.zeros_like(images)
    moved[:, :, pixels:] = images[:, :, :-pixels]
    return moved


def imagenet_features(images: np.ndarray) -> np.ndarray:
    """The frozen network's feature vectors of grey uint8 images, as in section 2b."""
    return training.predict(image_net.features, image_net.preprocess(images, image_size).split(128)).numpy()


first_seed = seeds_a[0]
picked_C = runs_a[runs_a.seed == first_seed].set_index("condition")["C (picked on validation)"]
exp_labelled = datasets.sample_per_class(fashion.train, k_a, seed=first_seed)
flat = lambda images: images.reshape(len(images), -1) / 255.0  # noqa: E731
raw_model = LogisticRegression(C=picked_C[RAW], max_iter=3000).fit(flat(exp_labelled.x), exp_labelled.y)
feature_model = LogisticRegression(C=picked_C[FEATURES], max_iter=3000).fit(imagenet_features(exp_labelled.x),
                                                                             exp_labelled.y)
few = slice(0, 300)  # enough images for a gap this size, and quick in every profile
moved_test, few_y = moved_right(test_a.x[few], 4), test_a.y[few]
lost = {"raw pixels": raw_model.score(flat(test_a.x[few]), few_y) - raw_model.score(flat(moved_test), few_y),
        "ImageNet features": feature_model.score(features_test[few], few_y)
        - feature_model.score(imagenet_features(moved_test), few_y)}
outcome = ("raw pixels" if lost["raw pixels"] > lost["ImageNet features"] + 0.05 else
           "ImageNet features" if lost["ImageNet features"] > lost["raw pixels"] + 0.05 else "about the same")
check_prediction(my_prediction, outcome, name="exercise 4 (moved images)",
                 choices=["raw pixels", "ImageNet features", "about the same"],
                 evidence=f"accuracy lost when the test images move 4 pixels: raw pixels {lost['raw pixels']:.3f}, "
                          f"ImageNet features {lost['ImageNet features']:.3f} (seed {first_seed}): a weight per pixel "
                          "only knows where things were; convolutions and pooling look for them everywhere")

# %% [markdown]
# ## 5. Results
#
# The key numbers go to the metrics file, and the lesson's claims are asserted.

# %%
lesson.save_metrics({
    "image_size": image_size, "k_a": k_a, "k": k, "width": width,
    "acc_raw_pixels": acc_raw, "acc_feature_extractor": acc_feature_extractor,
    "acc_finetune": acc_finetune, "acc_scratch": acc_scratch,
    "seconds_feature_extractor": float(seconds_feature_extractor),
    "seconds_finetune": float(seconds_finetune),
    "seconds_scratch": float(table_a.loc[SCRATCH, "seconds"]),
    "seeds_a": settings["seeds_a"], "runs_a": runs_a.drop(columns=["C (picked on validation)"]).round(4).to_dict("records"),
    "photo_top1": photo_table["top-1 ImageNet class"].tolist(),
    "source_accuracy": source.source_accuracy, "source_from_cache": int(source.cached),
    "acc_scratch_b": acc_scratch_b, "acc_finetune_b": acc_finetune_b,
    "acc_by_frozen_blocks": acc_by_frozen_blocks,  # b = 1, 2, 3, 4 blocks frozen
    "acc_by_frozen_blocks_std": [float(np.nan_to_num(summary_b.loc[str(b), "spread"])) for b in range(1, 5)],
    "seeds_b": settings["seeds_b"],
    "runs_b": runs_b.to_dict("records"),
    "acc_constant_a": acc_constant_a, "acc_constant_b": acc_constant_b,
    **claims.as_metrics(),
})
# Part A: a pretrained start beats the same network from random weights with 10 labels per class
assert max(acc_feature_extractor, acc_finetune) > acc_scratch + 0.05, (acc_feature_extractor, acc_finetune, acc_scratch)
assert acc_finetune > acc_scratch + 0.03
if settings["seeds_a"] >= 3:  # the part A comparison the summary states, decided over seeds
    assert part_a_comparisons["pretrained_vs_scratch_a"].winner == "the pretrained start", \
        part_a_comparisons["pretrained_vs_scratch_a"].sentence()
if lesson.profile != "smoke":  # a scratch baseline stuck at the constant predictor is no baseline (evidence rule 4)
    assert acc_scratch > acc_constant_a + 0.1, (acc_scratch, acc_constant_a)
# Part B: transferred features beat scratch with few labels, and freezing everything is the worst transfer
assert max([acc_finetune_b] + acc_by_frozen_blocks[:3]) > acc_scratch_b + 0.02, (acc_finetune_b, acc_scratch_b)
assert acc_by_frozen_blocks[3] < max([acc_finetune_b] + acc_by_frozen_blocks[:3]) - 0.03, acc_by_frozen_blocks
assert source.source_accuracy > 0.8

# %% [markdown]
# ## Summary and what next
#
# * A pretrained CNN can be used **frozen** (one forward pass per image, a linear model on top),
#   **fine-tuned** (forward and backward passes through every layer) or not at all (**from scratch**).
# * **Which layers transfer** is Yosinski et al.'s question: freeze the first *b* blocks of a network
#   pretrained on a source task and see where transferred features stop helping.
# * Grad-CAM and feature maps show what a network responds to; they are descriptions, not proofs.

# %%
display(Markdown(claims.markdown("What this run showed")))

# %% [markdown]
# **Next:** [09 · Distillation, multi-task, relations](09_distillation_multitask_relations.ipynb) moves knowledge
# from a big network into a small one. [04 · Model-based transfer](04_model_based.ipynb) compares the
# fine-tuning strategies (gradual unfreezing, layer-wise rates, L2-SP) on the same source network and
# measures what the source task forgets.
