"""System 1's feature extractors: a timm CNN, a Transformer and a Conformer.

All three take raw 2 s waves (B, T), compute the mel front end on the model's device, and
return the same outputs:
  embedding (B, 128), machine (B,) logit, section (B, n_classes) logits,
  and domain (B,) logit when the domain head is enabled.
"""

import logging
import math
from dataclasses import dataclass

import timm
import torch
from torch import nn

from asd_tools.constants import N_SECTIONS, SAMPLE_RATE
from asd_tools.frontend import conformer, log_compress, mel_spectrogram, spec_augment

# Current timm names of backbones the original configs used under their old names.
BACKBONE_ALIASES = {"tf_efficientnet_b0_ns": "tf_efficientnet_b0.ns_jft_in1k"}


@dataclass
class FrontendConfig:
    """Mel front end (defaults: the CNN family's 224 x 126 input for 2 s).

    The one place System 1's front-end defaults live: a model built without a front end uses them too.
    The sequence-model configs (100-203) state their own (hop 512, 0-8000 Hz, not normalised).
    """

    n_fft: int = 2048
    hop_length: int = 256
    n_mels: int = 224
    f_min: float = 50.0
    f_max: float = 7800.0
    # Window-normalised STFT (the original CNN and DG-Mix front ends); the original Transformer and
    # Conformer front end (torchaudio's defaults) was not normalised: false.
    normalized: bool = True
    log: bool = False  # the original fed magnitudes; log compression is an option
    time_mask: int = 0  # SpecAugment: widest time mask in frames (0 = off); training only
    freq_mask: int = 0  # SpecAugment: widest frequency mask in bands (0 = off)


class MelFrontend(nn.Module):
    """Wave (B, T) -> mel spectrogram (B, n_mels, frames), computed on the model's device."""

    def __init__(self, cfg: FrontendConfig):
        super().__init__()
        self.cfg = cfg
        self.mel = mel_spectrogram(
            SAMPLE_RATE, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.f_min, cfg.f_max, normalized=cfg.normalized
        )
        self.augment = spec_augment(cfg.time_mask, cfg.freq_mask)

    def forward(self, wave):
        with torch.autocast(device_type=wave.device.type, enabled=False):  # STFT in float32
            spec = self.mel(wave.float())
            if self.cfg.log:
                spec = log_compress(spec)
        if self.training and self.augment is not None:
            spec = self.augment(spec)
        return spec


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
        self, in_dim, embedding_size=128, neck="option-F", dropout=0.3, n_classes=N_SECTIONS, domain_head=False
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


class ASDModel(nn.Module):
    """timm image backbone on a 3-channel mel image, pooled to a vector, then neck and heads."""

    def __init__(
        self,
        backbone="tf_efficientnet_b0.ns_jft_in1k",
        pretrained=False,
        pretrained_path=None,
        pooling="avg",
        embedding_size=128,
        neck="option-F",
        dropout=0.3,
        domain_head=False,
        frontend=None,
        n_classes=N_SECTIONS,
    ):
        super().__init__()
        self.frontend = MelFrontend(frontend or FrontendConfig())
        self.backbone = create_backbone(backbone, pretrained, pretrained_path)
        if pooling not in ("avg", "gem"):
            raise ValueError(f"pooling '{pooling}' is not one of ['avg', 'gem']")
        self.pool = GeM() if pooling == "gem" else nn.AdaptiveAvgPool2d(1)
        self.heads = EmbeddingHeads(self.backbone.num_features, embedding_size, neck, dropout, n_classes, domain_head)

    def forward(self, wave):
        spec = self.frontend(wave).unsqueeze(1).expand(-1, 3, -1, -1)  # mel image, 3 channels
        features = self.pool(self.backbone.forward_features(spec)).flatten(1)
        return self.heads(features)


def create_backbone(name, pretrained=False, pretrained_path=None):
    """A timm feature extractor (no classifier, no pooling) by name.

    ``pretrained: true`` loads timm's ImageNet weights, which needs the model hub;
    ``pretrained_path`` loads the same weights from a local file and works offline.
    """
    name = BACKBONE_ALIASES.get(name, name)
    kwargs = dict(num_classes=0, global_pool="")
    if pretrained_path:
        return timm.create_model(
            name, pretrained=True, pretrained_cfg_overlay=dict(file=str(pretrained_path)), **kwargs
        )
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs)
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as err:  # hub errors come in many types (connection, offline mode, HTTP)
        raise RuntimeError(
            f"could not download ImageNet weights for '{name}' ({type(err).__name__}: {err}). "
            "On a machine without internet set 'pretrained_path: <weights file>' in the model config "
            "(e.g. a pytorch_model.bin or model.safetensors saved from timm elsewhere), or 'pretrained: false'."
        ) from None


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
        n_classes=N_SECTIONS,
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
        n_classes=N_SECTIONS,
    ):
        frontend = frontend or FrontendConfig()  # the schema's defaults, as for the CNN
        super().__init__(frontend, embedding_size, neck, neck_dropout, domain_head, pe_scale, n_classes)
        self.encoder = conformer(frontend.n_mels, num_heads, ffn_dim, num_layers, kernel_size, dropout)

    def encode(self, tokens):
        lengths = torch.full((tokens.shape[0],), tokens.shape[1], device=tokens.device)
        return self.encoder(tokens, lengths)[0]


logging.getLogger("timm").setLevel(logging.WARNING)
