"""Feature extractors of both systems, chosen by name through one registry."""

from asd_tools.models.asd_model import ASDModel, ConformerModel, TransformerModel

MODELS = {
    "asd_model": ASDModel,
    "transformer": TransformerModel,
    "conformer": ConformerModel,
}


def build_model(name: str, **params):
    """Instantiate a registered model; unknown names and parameters are clear errors."""
    if name not in MODELS:
        raise KeyError(f"unknown model '{name}': choose from {sorted(MODELS)}")
    return MODELS[name](**params)
