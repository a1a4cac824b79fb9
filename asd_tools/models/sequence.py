"""System 1's sequence extractors: a Transformer (config families 100-103) and torchaudio's Conformer
(200-203), with mel frames as tokens and the same heads and outputs as the CNN (``models/cnn.py``)."""

import math

import torch
from torch import nn

from asd_tools.audio import conformer
from asd_tools.models.frontend import FrontendConfig, MelFrontend
from asd_tools.models.heads import DEFAULT_CLASSES, EmbeddingHeads

# How the mel frames are scaled before the sinusoidal positions are added:
#   sqrt_d: x * sqrt(d_model) + pe, the original Transformer/Conformer (ESPnet-style PositionalEncoding,
#           asd_tools/models/modules.py); with raw STFT magnitudes the positions are then negligible;
#   none:   x + pe (this project's first version): the positions weigh as much as the content.
PE_SCALES = ("sqrt_d", "none")


class SinusoidalPositions(nn.Module):
    """Adds a sinusoidal positional encoding to (B, T, D) tokens, after scaling them (``PE_SCALES``)."""

    def __init__(self, dim, scale="none", max_len=4096):
        super().__init__()
        if scale not in PE_SCALES:
            raise ValueError(f"pe_scale '{scale}' is not one of {list(PE_SCALES)}")
        self.scale = math.sqrt(dim) if scale == "sqrt_d" else 1.0
        position = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
        table = torch.zeros(max_len, dim)
        table[:, 0::2] = torch.sin(position * div)
        table[:, 1::2] = torch.cos(position * div[: dim // 2])
        self.register_buffer("table", table, persistent=False)

    def forward(self, x):  # (B, T, D)
        return x * self.scale + self.table[: x.shape[1]]


class _SequenceModel(nn.Module):
    """Shared by the Transformer and Conformer: mel bands as tokens, a mean "header" token first."""

    def __init__(self, frontend, embedding_size, neck, dropout, domain_head, pe_scale, n_classes):
        super().__init__()
        self.frontend = MelFrontend(frontend)
        self.positions = SinusoidalPositions(frontend.n_mels, pe_scale)
        self.heads = EmbeddingHeads(frontend.n_mels, embedding_size, neck, dropout, n_classes, domain_head)

    def tokens(self, wave):
        frames = self.frontend(wave).transpose(1, 2)  # (B, T, n_mels)
        header = frames.mean(dim=1, keepdim=True)
        return self.positions(torch.cat([header, frames], dim=1))

    def forward(self, wave):
        return self.heads(self.encode(self.tokens(wave))[:, 0])


class TransformerModel(_SequenceModel):
    """Transformer encoder (family 100-103): 4 layers, 4 heads, feed-forward 128, GELU.

    Defaults keep this project's first version (dropout 0.1, ``pe_scale: none``); configs 100-103 set
    the original's dropout 0.0 and ``pe_scale: sqrt_d``.
    """

    def __init__(
        self,
        num_layers=4,
        num_heads=4,
        ffn_dim=128,
        dropout=0.1,
        pe_scale="none",
        embedding_size=128,
        neck="option-D",
        neck_dropout=0.3,
        domain_head=False,
        frontend=None,
        n_classes=DEFAULT_CLASSES,
    ):
        frontend = frontend or FrontendConfig()  # the schema's defaults, as for the CNN
        super().__init__(frontend, embedding_size, neck, neck_dropout, domain_head, pe_scale, n_classes)
        layer = nn.TransformerEncoderLayer(
            frontend.n_mels, num_heads, ffn_dim, dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)

    def encode(self, tokens):
        return self.encoder(tokens)


class ConformerModel(_SequenceModel):
    """torchaudio's Conformer (family 200-203): 4 heads, feed-forward 64, depthwise kernel 31.

    Defaults as for the Transformer; configs 200-203 set the original's dropout 0.0 and
    ``pe_scale: sqrt_d``. (The original's option-F neck used the encoder dropout, not 0.3:
    set ``neck_dropout`` to the same value to reproduce it.)
    """

    def __init__(
        self,
        num_layers=4,
        num_heads=4,
        ffn_dim=64,
        kernel_size=31,
        dropout=0.1,
        pe_scale="none",
        embedding_size=128,
        neck="option-D",
        neck_dropout=0.3,
        domain_head=False,
        frontend=None,
        n_classes=DEFAULT_CLASSES,
    ):
        frontend = frontend or FrontendConfig()  # the schema's defaults, as for the CNN
        super().__init__(frontend, embedding_size, neck, neck_dropout, domain_head, pe_scale, n_classes)
        self.encoder = conformer(frontend.n_mels, num_heads, ffn_dim, num_layers, kernel_size, dropout)

    def encode(self, tokens):
        lengths = torch.full((tokens.shape[0],), tokens.shape[1], device=tokens.device)
        return self.encoder(tokens, lengths)[0]
