"""System 2's extractor: the MobileNetV2 variant of DG-Mix (Nejjar et al., DCASE 2022 workshop).

3x3 conv stride 2 (16) -> 3x3 conv (32) -> inverted residual stages (t, c, n, s) ->
1x1 conv to 320 -> depthwise 4x2 conv (no padding) -> ReLU6 -> 1x1 grouped conv -> 320-d.
For a 2 s input (128 mel bands x 63 frames) the final map is 4 x 2, which the 4x2 kernel
collapses to 1x1. Longer inputs give several time positions; the first is kept (the
original's whole-clip inference).

The original (ibkuroyagi/DGMix, asd_tools/models/mobilenetv2.py and vicreg.py) ends in a 1x1 conv
with groups=320 (one scale per channel), has no BatchNorm after the 4x2 depthwise conv, a section
head of two Linear layers without an activation between them, and initialises every conv from
N(0, 2 / (k_h k_w out_channels)). This project's first version differed in all four; each is a
constructor switch, with that first version as the default so that its checkpoints keep their meaning.
"""

import math

from torch import nn

from asd_tools.models.frontend import FrontendConfig, MelFrontend
from asd_tools.models.heads import DEFAULT_CLASSES

# (expansion t, channels c, repeats n, stride s) of the inverted residual stages
STAGES = ((1, 8, 1, 1), (6, 16, 2, 2), (6, 16, 3, 2), (6, 32, 4, 2), (6, 48, 3, 1), (6, 80, 3, 2), (6, 160, 1, 1))
EMBEDDING_SIZE = 320
SECTION_HIDDEN = 128  # section head: 320 -> 128 -> sections
# Weight initialisation: "mobilenet_v2" = the original's (tonylins' MobileNetV2: conv weights ~
# N(0, 2 / (k_h k_w out_channels)), BatchNorm scale 1 and shift 0); "torch" = PyTorch's defaults.
INITS = ("torch", "mobilenet_v2")


def dgmix_frontend() -> FrontendConfig:
    """DG-Mix's front end, the one place it is stated (the schema's default and the extractor's): 128 mel
    bands x 63 frames for 2 s, which the extractor's 4x2 tail collapses to one position."""
    return FrontendConfig(n_fft=1024, hop_length=512, n_mels=128, f_min=0.0, f_max=8000.0)


def conv_bn(cin, cout, kernel, stride=1, groups=1, activation=True, padding=None):
    padding = kernel // 2 if padding is None else padding
    layers = [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if activation:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expansion):
        super().__init__()
        hidden = cin * expansion
        layers = [] if expansion == 1 else [conv_bn(cin, hidden, 1)]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, activation=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class DGMixExtractor(nn.Module):
    """Wave (B, T) -> 320-d embedding; ``spectrogram`` and ``embed_spectrogram`` are exposed
    separately because DG-Mix mixes in the spectrogram domain.

    ``final_groups``: groups of the last 1x1 conv (the original: 320); ``tail_batchnorm``: a
    BatchNorm between the 4x2 depthwise conv and its ReLU6 (the original: none); ``head_relu``: a ReLU
    between the section head's two Linear layers (the original: none); ``init``: one of ``INITS``;
    ``n_sections``: outputs of the section head (the recipe passes the machine type's section count).
    A left-out layer is an Identity, so the state-dict keys of the others do not move.
    """

    def __init__(
        self,
        final_groups=8,
        section_head=False,
        frontend=None,
        tail_batchnorm=True,
        head_relu=True,
        init="torch",
        n_sections=DEFAULT_CLASSES,
    ):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init '{init}' is not one of {list(INITS)}")
        self.frontend = MelFrontend(frontend or dgmix_frontend())
        layers = [conv_bn(3, 16, 3, stride=2), conv_bn(16, 32, 3)]
        cin = 32
        for t, c, n, s in STAGES:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, EMBEDDING_SIZE, 1))
        self.features = nn.Sequential(*layers)
        self.collapse = nn.Sequential(  # the 4x2 depthwise kernel collapses a 2 s map to 1x1
            nn.Conv2d(EMBEDDING_SIZE, EMBEDDING_SIZE, (4, 2), groups=EMBEDDING_SIZE, bias=False),
            nn.BatchNorm2d(EMBEDDING_SIZE) if tail_batchnorm else nn.Identity(),
            nn.ReLU6(inplace=True),
            nn.Conv2d(EMBEDDING_SIZE, EMBEDDING_SIZE, 1, groups=final_groups, bias=False),
        )
        if init == "mobilenet_v2":
            mobilenet_v2_init(self)
        self.section_head = (
            nn.Sequential(
                nn.Linear(EMBEDDING_SIZE, SECTION_HIDDEN),
                nn.ReLU(inplace=True) if head_relu else nn.Identity(),
                nn.Linear(SECTION_HIDDEN, n_sections),
            )
            if section_head
            else None
        )

    def spectrogram(self, wave):
        return self.frontend(wave).unsqueeze(1).expand(-1, 3, -1, -1)

    def embed_spectrogram(self, spec):
        out = self.collapse(self.features(spec))
        return out[:, :, 0, 0]  # the first time position (the only one for 2 s inputs)

    def forward(self, wave):
        embedding = self.embed_spectrogram(self.spectrogram(wave))
        out = {"embedding": embedding}
        if self.section_head is not None:
            out["section"] = self.section_head(embedding)
        return out


def mobilenet_v2_init(module):
    """The original's initialisation of the convolutional layers (the section head keeps PyTorch's)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Projector(nn.Module):
    """VICReg projector 320 -> 1280 -> 1280 -> 1280 (Linear-BN-ReLU twice, last Linear without bias)."""

    def __init__(self, dims=(EMBEDDING_SIZE, 1280, 1280, 1280)):
        super().__init__()
        layers = []
        for cin, cout in zip(dims[:-2], dims[1:-1]):
            layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(dims[-2], dims[-1], bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class PretrainModel(nn.Module):
    """The extractor with the VICReg projector on top (the projector is dropped after pre-training)."""

    def __init__(self, extractor, projector):
        super().__init__()
        self.extractor, self.projector = extractor, projector
