"""The back end every system shares: the embeddings format, the detector and pooling registries and the
detector stage."""
