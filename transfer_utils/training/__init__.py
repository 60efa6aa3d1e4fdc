"""The training loop every lesson uses: ``fit`` / ``evaluate`` / ``predict``, checkpoints, modes.

    loop         fit (epochs, validation, early stopping, best weights, resuming), evaluate, predict, steps
    checkpoints  atomic, checksummed save and safe load of model / optimizer / scheduler states
    modes        train / eval modes and batch norm under freezing
    precision    bf16 mixed precision where the hardware has it (``precision.autocast_step``)
    side_by_side independent runs in parallel processes, one core each (``side_by_side.run_side_by_side``)

Import from the package (``from transfer_utils import training``; ``training.fit(...)``).
"""

from transfer_utils.training.checkpoints import CorruptCheckpointError, load_checkpoint, save_checkpoint
from transfer_utils.training.loop import (History, Step, StepOutput, evaluate, fit, logits_of, predict, steps_for,
                                          supervised_step, train_steps)
from transfer_utils.training.modes import (batchnorm_in_eval, eval_mode, freeze_batchnorm_stats,
                                           keep_frozen_batchnorm_in_eval, model_device, move_to,
                                           recalibrate_batchnorm, train_mode)

__all__ = ["fit", "evaluate", "predict", "train_steps", "steps_for", "History", "Step", "StepOutput",
           "supervised_step", "move_to", "logits_of", "model_device", "save_checkpoint", "load_checkpoint",
           "CorruptCheckpointError", "batchnorm_in_eval", "keep_frozen_batchnorm_in_eval", "freeze_batchnorm_stats",
           "train_mode", "eval_mode", "recalibrate_batchnorm"]
