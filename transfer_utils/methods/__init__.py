"""Transfer methods taught in the course, one module per transfer type (as skada and ADAPT group them).

Nothing is re-exported here: each name has one import path, its module's, e.g.
``from transfer_utils.methods.feature import CORAL``.

    instance    re-weighting source examples (lesson 02): domain-classifier weights, kernel mean
                matching, KLIEP, the effective sample size, the TrAdaBoost classifier, and prior-shift
                correction (Bayes' re-weighting of class probabilities, EM estimate of the target prior)
                -> ``transfer_utils.methods.instance``
    feature     aligning feature spaces (lesson 03): the MMD distance and the fit / transform classes
                CORAL, SubspaceAlignment and TCA -> ``transfer_utils.methods.feature``
    parameter   reusing pretrained weights (lessons 04, 08): freezing stages, gradual unfreezing,
                layer-wise learning rates, L2-SP, one shared encoder with two heads
                -> ``transfer_utils.methods.parameter``
    deep        adaptation inside a network (lesson 05): gradient reversal, the small ``DigitCNN``
                every method trains, and the training steps ``DANNStep``, ``DeepCORALStep`` (its loss
                ``deep_coral_loss``, not the feature-based ``CORAL``) and ``DeepMMDStep``
                -> ``transfer_utils.methods.deep``
    distillation  a small student learns from a large teacher (lesson 09): the soft-target loss ``kd_loss``
                  (T² · KL) and its gradient, the BCE-with-logits gradient, relational KD
                  (``rkd_distance_loss``, ``rkd_angle_loss``) and the training step ``DistillationStep``
                  -> ``transfer_utils.methods.distillation``
    parameter_efficient  training a few added weights (lesson 11): a LoRA layer by hand, checked
                against peft, and small helpers around peft's adapters
                -> ``transfer_utils.methods.parameter_efficient``
"""
