"""What the model families share: strict loading, remote code, input checks, torch utilities, the sampler
settings, the pipeline base and the ViT blocks."""
