"""System 1's CNN extractor: a timm image backbone on a 3-channel mel image (config families 000-003).

Its registry name is ``asd_model``, the original recipe's name for it (saved configs and provenance
records name it so); the Transformer and Conformer extractors are in ``models/sequence.py``.
All System 1 extractors take raw 2 s waves (B, T), compute the mel front end on the model's
device, and return the same outputs:
  embedding (B, 128), machine (B,) logit, section (B, n_classes) logits,
  and domain (B,) logit when the domain head is enabled.
"""

import logging

import timm
from torch import nn

from asd_tools.models.frontend import FrontendConfig, MelFrontend
from asd_tools.models.heads import DEFAULT_CLASSES, EmbeddingHeads, GeM

# Current timm names of backbones the original configs used under their old names.
BACKBONE_ALIASES = {"tf_efficientnet_b0_ns": "tf_efficientnet_b0.ns_jft_in1k"}


class CNNModel(nn.Module):
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
        n_classes=DEFAULT_CLASSES,
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


logging.getLogger("timm").setLevel(logging.WARNING)
