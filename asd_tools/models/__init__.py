"""Feature extractors. System 1's are chosen by a config's ``model.name`` through ``MODELS`` (they share one
constructor interface: front end, embedding heads, section classes); DG-Mix's extractor, projector and
pre-training wrapper (``models/dgmix.py``) are built by its system from its own ``model:`` section."""

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
