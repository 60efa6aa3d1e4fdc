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

Planned (lessons 09-12, no module yet):

    distillation          soft targets from a teacher model (09)
    relation              multi-task and relation-based transfer, shared encoders (09, 10)
    parameter-efficient   LoRA and adapters against full fine-tuning (11)
"""
