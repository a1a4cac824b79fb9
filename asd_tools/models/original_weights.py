"""The original code's weights in this project's models: one mapping per code base between the state dicts.

System 1 (``from_original_state_dict``):
The original (ibkuroyagi/dcase2022_task2_challenge_recipe, ``asd_tools/models/``) names its modules
``ASDModel`` (``backbone.net``, ``melspectrogram``), ``Transformer`` (``encoder_transformer``,
``spectrogram_extractor``) and ``ASDConformer`` (``encoder_conformer``); the heads sit at the top level.
Here the heads live in ``heads`` and the option-D neck has an identity where option-F has its dropout,
so that both necks index their layers alike. ``from_original_state_dict`` is the only place that knows
this; the golden tests (tests/test_golden_recipe.py) load the original's outputs through it.

DG-Mix (``from_original_dgmix_state_dict``): ibkuroyagi/DGMix's ``VICReg`` holds ``backbone``
(``MobileNetV2Extractor``: ``input_layer``, ``features``, ``add_conv``), ``section_head`` and
``projector``; here ``DGMixExtractor`` holds the stem and the inverted residual blocks in one
``features`` list, the 4x2 tail in ``collapse`` and each conv + BatchNorm pair as its own Sequential
(tests/test_golden_dgmix.py).
"""

import re

import torch

# original prefix -> ours, first match wins (the original's top-level head names go under heads.)
PREFIXES = (
    ("backbone.net.", "backbone."),
    ("melspectrogram.", "frontend.mel."),
    ("spectrogram_extractor.", "frontend.mel."),
    ("encoder_transformer.", "encoder."),
    ("encoder_conformer.", "encoder."),
    ("neck.", "heads.neck."),
    ("machine_head.", "heads.machine_head."),
    ("section_head.", "heads.section_head."),
    ("domain_head.", "heads.domain_head."),
)
# Entries of the original that ours has no counterpart for: the timm classifier (the original built the
# backbone with its ImageNet classifier and never called it) and the positional table (a persistent buffer
# of 64 rows there, computed here and not saved).
DROPPED = ("backbone.net.classifier.", "position_encode.pe")


def _is_option_d(state: dict) -> bool:
    """The original's option-D neck starts with its Linear at index 0 (option-F: a Dropout there)."""
    return "neck.0.weight" in state


def _rename(key: str, option_d: bool) -> str:
    for old, new in PREFIXES:
        if key.startswith(old):
            key = new + key[len(old) :]
            break
    else:
        raise KeyError(f"original state dict key '{key}' has no counterpart here; extend PREFIXES or DROPPED")
    if option_d and key.startswith("heads.neck."):
        index, rest = key[len("heads.neck.") :].split(".", 1)
        key = f"heads.neck.{int(index) + 1}.{rest}"  # ours: an identity at 0 where option-F has dropout
    return key


def from_original_state_dict(state: dict, model: torch.nn.Module) -> dict:
    """The original recipe's state dict (``model`` key of its checkpoint) as one ``model`` loads strictly.

    ``model`` supplies what the original has no entry for: the domain head's bias (the original's head had
    none: zero) and, when the original's mel buffers are absent, ours. Raises a KeyError naming any key
    that has no counterpart, or that ``model`` lacks.
    """
    option_d = _is_option_d(state)
    ours = model.state_dict()
    mapped = {}
    for key, value in state.items():
        if key.startswith(DROPPED):
            continue
        new = _rename(key, option_d)
        if new not in ours:
            raise KeyError(f"original key '{key}' maps to '{new}', which this model does not have")
        mapped[new] = value
    for key, value in ours.items():
        if key not in mapped:
            if key == "heads.domain_head.bias" or key.startswith("frontend.mel."):
                mapped[key] = torch.zeros_like(value) if key.endswith("bias") else value
            else:
                raise KeyError(f"'{key}' has no entry in the original state dict")
    return mapped


def _dgmix_key(key: str) -> str:
    """One VICReg key -> ours (extractor keys without a prefix, projector keys under ``projector.``)."""
    rules = (
        (r"melspectrogram\.(.*)", r"frontend.mel.\1"),
        (r"backbone\.input_layer\.(\d)\.(.*)", r"features.0.\1.\2"),
        (r"backbone\.features\.0\.(\d)\.(.*)", r"features.1.\1.\2"),
        (r"backbone\.add_conv\.0\.(\d)\.(.*)", r"features.19.\1.\2"),
        (r"backbone\.add_conv\.1\.(.*)", r"collapse.0.\1"),
        (r"backbone\.add_conv\.3\.(.*)", r"collapse.3.\1"),
        (r"section_head\.0\.(.*)", r"section_head.0.\1"),
        (r"section_head\.1\.(.*)", r"section_head.2.\1"),  # ours: ReLU or identity at 1 (head_relu)
        (r"projector\.(.*)", r"projector.net.\1"),
    )
    for pattern, replacement in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, replacement, key)
    block = re.fullmatch(r"backbone\.features\.(\d+)\.conv\.(\d)\.(.*)", key)
    if block:  # an inverted residual: its flat conv/BN/ReLU6 list -> our (conv, BN) pairs, ReLU6 inside
        index, layer, rest = int(block[1]), int(block[2]), block[3]
        return f"features.{index + 1}.block.{layer // 3}.{layer % 3}.{rest}"
    raise KeyError(f"original DG-Mix state dict key '{key}' has no counterpart here")


def from_original_dgmix_state_dict(state: dict, extractor: torch.nn.Module) -> tuple:
    """ibkuroyagi/DGMix's ``VICReg`` state dict as (extractor state, projector state) for a
    ``DGMixExtractor`` built as ``dgmix.original`` (final_groups 320, no tail BatchNorm, no head ReLU) and
    its ``Projector``. Mel buffers the original lacks come from ``extractor``; an unknown key is a KeyError."""
    ours = extractor.state_dict()
    mapped = {_dgmix_key(key): value for key, value in state.items()}
    projector = {k[len("projector.") :]: v for k, v in mapped.items() if k.startswith("projector.")}
    extractor_state = {k: v for k, v in mapped.items() if not k.startswith("projector.")}
    for key in set(extractor_state) - set(ours):
        raise KeyError(f"'{key}' (from the original) is not in this extractor: build it as dgmix.original")
    for key in set(ours) - set(extractor_state):
        if not key.startswith("frontend.mel."):
            raise KeyError(f"'{key}' has no entry in the original state dict")
        extractor_state[key] = ours[key]
    return extractor_state, projector
