"""Pooling and the heads every System 1 extractor ends in: neck, machine, section and domain heads."""

import torch
from torch import nn

# The original recipe's head size (six sections); the recipes size every head from the corpus instead.
DEFAULT_CLASSES = 6


class GeM(nn.Module):
    """Generalised-mean pooling over the spatial axes (learnable p)."""

    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x):
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)


class EmbeddingHeads(nn.Module):
    """Neck (option-F: dropout, or option-D: none) and the machine / section / domain heads."""

    NECKS = ("option-F", "option-D")

    def __init__(
        self, in_dim, embedding_size=128, neck="option-F", dropout=0.3, n_classes=DEFAULT_CLASSES, domain_head=False
    ):
        super().__init__()
        if neck not in self.NECKS:
            raise ValueError(f"neck '{neck}' is not one of {self.NECKS}")
        self.embedding_size = embedding_size
        self.neck = nn.Sequential(
            nn.Dropout(dropout) if neck == "option-F" else nn.Identity(),
            nn.Linear(in_dim, embedding_size),
            nn.BatchNorm1d(embedding_size),
            nn.PReLU(),
            nn.Linear(embedding_size, embedding_size),
        )
        self.machine_head = nn.Linear(1, 1)
        self.section_head = nn.Linear(embedding_size, n_classes, bias=False)
        self.domain_head = nn.Linear(embedding_size, 1) if domain_head else None

    def forward(self, features):
        embedding = self.neck(features)
        norm = embedding.pow(2).sum(dim=1, keepdim=True) / self.embedding_size
        out = {
            "embedding": embedding,
            "machine": self.machine_head(norm).squeeze(1),
            "section": self.section_head(embedding),
        }
        if self.domain_head is not None:
            out["domain"] = self.domain_head(embedding).squeeze(1)
        return out
