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
    runner     papermill execution of notebooks, course runs and sweeps
    cli        ``python -m transfer_utils ...``
"""

__version__ = "0.1.0"
