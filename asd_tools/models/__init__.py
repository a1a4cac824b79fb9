"""Feature extractors of both systems, chosen by name through one registry."""

from asd_tools.models.cnn import CNNModel
from asd_tools.models.sequence import ConformerModel, TransformerModel

MODELS = {
    "asd_model": CNNModel,  # the original recipe's name for its CNN extractor (kept: saved configs use it)
    "transformer": TransformerModel,
    "conformer": ConformerModel,
}


def build_model(name: str, **params):
    """Instantiate a registered model; unknown names and parameters are clear errors."""
    if name not in MODELS:
        raise KeyError(f"unknown model '{name}': choose from {sorted(MODELS)}")
    return MODELS[name](**params)
