"""The systems: each turns a dump into window embeddings (train, then embed), which the shared back end scores."""
