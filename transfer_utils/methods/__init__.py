"""Transfer methods taught in the course, organised by transfer type (as skada and ADAPT do).

    instance   re-weighting source examples: domain-classifier weights, KMM, KLIEP, TrAdaBoost
    feature    aligning feature spaces: CORAL, subspace alignment, TCA, and the MMD distance
    deep       adversarial and statistic-matching adaptation inside a network: DANN, Deep CORAL
"""

from transfer_utils.methods.deep import (DANN, AlignmentStep, DANNStep, ZippedLoader, coral_loss, dann_lambda, dann_lr_factor, grad_reverse, mmd_loss)
from transfer_utils.methods.feature import (CORAL, TCA, SubspaceAlignment, coral, median_gamma, mmd2, subspace_alignment, tca)
from transfer_utils.methods.instance import (TrAdaBoost, adjust_to_prior, classifier_weights, effective_sample_size, em_target_prior, kliep_weights, kmm_weights, tradaboost)

__all__ = [
    # instance-based
    "classifier_weights", "kmm_weights", "kliep_weights", "effective_sample_size", "TrAdaBoost", "tradaboost",
    "adjust_to_prior", "em_target_prior",
    # feature-based
    "coral", "CORAL", "subspace_alignment", "SubspaceAlignment", "tca", "TCA", "mmd2", "median_gamma",
    # deep
    "grad_reverse", "DANN", "DANNStep", "AlignmentStep", "ZippedLoader", "coral_loss",
    "mmd_loss", "dann_lambda", "dann_lr_factor",
]
