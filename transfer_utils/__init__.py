"""transfer_utils: the small shared package behind the transfer-learning course notebooks.

Modules, each with one job:
    paths      where data, caches and run outputs live
    runtime    seeds, device, threads, profiles, parameter checks, the Lesson object
    storage    atomic writes and safe loads
    assets     the registry of every model and dataset, and how each is found offline
    datasets   real datasets as arrays / lists with fixed train, validation and test splits
    models     pretrained text encoders and ImageNet backbones, loaded from local files
    text       frozen sentence features (mean pooling) with a cache
    training   fit / evaluate / predict, early stopping, checkpoints
    results    the metrics-file contract
    plots      small labelled figures
    exercises  instant checks for the exercises

Lesson building blocks:
    learning_curves      accuracy against the number of labels, per method, over seeds (01)
    covariate_shift      biased selections of real rows for instance weighting (02)
    image_features       frozen ImageNet features of small images, cached (03, 08)
    methods.instance     importance weights (domain classifier, KMM, KLIEP), TrAdaBoost, prior shift (02)
    methods.feature      CORAL, subspace alignment, TCA, MMD (03)
    methods.deep         gradient reversal, DANN, Deep CORAL / MMD losses (05)
    digit_shifts         MNIST → scikit-learn digits and MNIST → photo-blended MNIST (05)
    freezing             what may change, how fast and how far: freezing, layer-wise rates, L2-SP (04)
    vision               a narrow ResNet, image tensors with augmentation, shared encoders (04, 08)
    source_model         a ResNet pretrained on source classes of Fashion-MNIST, cached (04, 08)
    attention            attention by hand, checked against BERT (06)
    text_classification  the fine-tuning pipeline for a pretrained text encoder (01, 07)

Running and authoring:
    runner     papermill execution of notebooks, course runs and sweeps
    course     the lesson map and measured times
    nbtools    build notebooks from their sources, lint, student versions
    asset_checks, prefetch   checking and downloading the assets
    cli        ``python -m transfer_utils ...``
"""

__version__ = "0.1.0"
