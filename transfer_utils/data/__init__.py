"""Floor 1, data: where each asset is, the datasets with fixed splits, domain shifts, loaders and image tensors."""
