"""Transfer methods taught in the course, organised by transfer type (as skada and ADAPT do).

    instance   re-weighting source examples: domain-classifier weights, KMM, KLIEP, TrAdaBoost
    feature    aligning feature spaces: CORAL, subspace alignment, TCA, and the MMD distance
    deep       adversarial and statistic-matching adaptation inside a network: DANN, Deep CORAL
"""
