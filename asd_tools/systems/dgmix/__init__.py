"""System 2: DG-Mix (VICReg with mixup pre-training, fine-tuning, clip embeddings)."""
