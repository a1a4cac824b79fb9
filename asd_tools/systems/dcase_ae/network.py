"""The official baseline's autoencoder (their networks/dcase2023t2_ae/network.py, rewritten).

Encoder: ``layers`` x [Linear(hidden), BatchNorm, ReLU], then Linear(bottleneck), BatchNorm, ReLU;
decoder: Linear(hidden), BatchNorm, ReLU, ``layers - 1`` more of them, then a plain Linear back to the
input. Every BatchNorm has their momentum 0.01 and eps 1e-3 (Keras' defaults, from the 2020 baseline).
The source and target covariances of the reconstruction error (MAHALA scoring) are buffers named as
their parameters, so that one ``state_dict`` loads into the other.
"""

import torch
from torch import nn

BN_MOMENTUM, BN_EPS = 0.01, 1e-3


def dense_block(n_in: int, n_out: int):
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, momentum=BN_MOMENTUM, eps=BN_EPS), nn.ReLU()]


class AutoEncoder(nn.Module):
    def __init__(self, input_dim: int, block_size: int, hidden: int = 128, layers: int = 4, bottleneck: int = 8):
        super().__init__()
        self.input_dim = input_dim
        # Fitted after training (scores.fit_covariances); zeros until then, as theirs.
        self.register_buffer("cov_source", torch.zeros(block_size, block_size))
        self.register_buffer("cov_target", torch.zeros(block_size, block_size))
        encoder = dense_block(input_dim, hidden)
        for _ in range(layers - 1):
            encoder += dense_block(hidden, hidden)
        self.encoder = nn.Sequential(*encoder, *dense_block(hidden, bottleneck))
        decoder = dense_block(bottleneck, hidden)
        for _ in range(layers - 1):
            decoder += dense_block(hidden, hidden)
        self.decoder = nn.Sequential(*decoder, nn.Linear(hidden, input_dim))

    def forward(self, x):
        """(reconstruction, code) of a batch of feature vectors."""
        code = self.encoder(x.view(-1, self.input_dim))
        return self.decoder(code), code
