"""transfer_utils: the small shared package behind the transfer-learning course notebooks.

The package is built in floors. A module imports only from its own floor or the floors below it
(``tests/test_architecture.py`` checks this and that there are no import cycles; run
``python -m transfer_utils.course.imports`` to print the graph). To read how a method works, open
``methods/``; you never need ``course/``, which only runs and authors the notebooks.

Floor 0, ``core/`` — the basics every lesson uses
    paths       where data, caches and run outputs live
    runtime     seeds, device, threads, profiles, parameter checks, the Lesson object
    storage     atomic writes, safe loads, content digests for cache keys
    results     the metrics-file contract
    evidence    claims rendered from the run: seed spreads, paired comparisons, constant baselines
    plots       small labelled figures
    exercises   instant checks for the exercises

Floor 1, ``data/`` — what the lessons learn from
    assets           the registry of every model and dataset, and how each is found offline
    datasets         real datasets with fixed train / validation / test splits
    covariate_shift  biased selections of real rows (02)
    digit_shifts     MNIST → scikit-learn digits, MNIST → photo-blended MNIST (03, 05)
    loaders          seeded DataLoaders; PairedLoader walks two loaders side by side (04, 05)
    image_tensors    uint8 images → tensors, augmentation, square photos (04, 05, 08)

Floor 2, ``training/`` — one loop for every model
    loop         fit / evaluate / predict, early stopping, best weights
    checkpoints  atomic, SHA-256-verified checkpoints (latest and best) to resume from
    distributed  the same loop on several processes through accelerate: prepare, launch configs (12)
    modes        device, train_mode / eval_mode, batch norm statistics under freezing

Floor 3, ``models/`` — pretrained and small networks
    pretrained     BERT-family text encoders and ImageNet backbones from local files
    embeddings     frozen text and image features, cached by content
    parts          a network's stages and parameter count
    small_resnet   a narrow torchvision ResNet for 28×28 images, new heads (04, 08)
    small_text     a small CNN over a pretrained model's token embeddings (the student of 09)
    source_model   that ResNet pretrained on source classes of Fashion-MNIST, cached (04, 08)

Floor 4, ``methods/`` — transfer methods by type (as skada and ADAPT sort them)
    instance    importance weights (domain classifier, KMM, KLIEP), TrAdaBoost, prior shift (02, 03)
    feature     CORAL, subspace alignment, TCA, the MMD distance (02, 03)
    parameter   freezing, gradual unfreezing, layer-wise rates, L2-SP, parameter sharing (04, 08)
    deep        gradient reversal, the DANN step, Deep CORAL / MMD steps, the two-headed DigitCNN (05)
    distillation  soft targets with T², BCE gradient, relational KD (distances, angles), the KD step (09)
    parameter_efficient  LoRA layer by hand, peft LoRA / (IA)³ set-ups, trainable shares, atomic adapter
                saves, peak memory (11)

Floor 5 — tools for single lessons
    applications     hand-over thresholds, share monitoring and alerts, precision@k (10)
    attention        attention by hand, checked against BERT (06)
    fine_tuning      the fine-tuning pipeline for a pretrained text encoder (01, 07)
    learning_curves  accuracy against the number of labels, per method, over seeds (01)
    scaling          fine-tuning runs on 1 or N processes, launched with a timeout (12)
    vision           feature maps and Grad-CAM (08)

Floor 6, ``course/`` — machinery (runs and authors the course; no lesson needs to read it)
    runner, cli, authoring (build / lint / student versions), catalog (lesson map and times),
    imports (this floor plan, checked), asset_checks, prefetch
"""

__version__ = "0.1.0"
