"""Floor 3, models: pretrained encoders and backbones, frozen embeddings, the small ResNet and its pretrained source weights."""
