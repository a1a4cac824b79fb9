"""Optimisers and learning-rate schedulers, chosen by name (well-kept implementations only)."""

import torch
from timm.optim import Lars, param_groups_weight_decay
from timm.scheduler import CosineLRScheduler

from asd_tools.config import check_params

OPTIMIZERS = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "lars": Lars,  # timm's LARS (DG-Mix pre-training)
}


def check_optimizer_params(name, params, where):
    """Config-load check of ``optimizer_params`` against optimiser ``name`` (the code passes the parameters)."""
    check_params(params, OPTIMIZERS[name], where, name, supplied=("params",))


def build_optimizer(name, model, exclude_bias_and_norm=False, **params):
    """Optimiser ``name`` over ``model``'s parameters.

    ``exclude_bias_and_norm``: biases and normalisation parameters (every 1-d tensor) get no weight
    decay, as in VICReg's LARS; with timm's LARS a group without weight decay is also not
    trust-ratio adapted, so these parameters take plain momentum-SGD steps. Without it, DG-Mix
    pre-training collapses: a zero-initialised BatchNorm shift has zero norm, so LARS leaves its
    first step unscaled; measured on the tiny config (fan), the extractor's BatchNorm shifts grew
    to ~100 within ten steps at lr 0.8, the ReLU6s saturated and every clip got one embedding.
    """
    if name not in OPTIMIZERS:
        raise KeyError(f"unknown optimizer '{name}': choose from {sorted(OPTIMIZERS)}")
    if exclude_bias_and_norm:
        parameters = param_groups_weight_decay(model, params.pop("weight_decay", 0.0))
    else:
        parameters = model.parameters()
    return OPTIMIZERS[name](parameters, **params)


class StepScheduler:
    """Adapter giving every scheduler one interface: ``step()`` once per optimiser step."""

    def __init__(self, scheduler, per_update=False):
        self.scheduler = scheduler
        self.per_update = per_update  # timm schedulers take the update count
        self.updates = 0

    def step(self):
        self.updates += 1
        if self.per_update:
            self.scheduler.step_update(self.updates)
        else:
            self.scheduler.step()

    def state_dict(self):
        return {"scheduler": self.scheduler.state_dict(), "updates": self.updates}

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state["scheduler"])
        self.updates = state["updates"]


def _one_cycle(optimizer, total_steps, **params):
    return StepScheduler(torch.optim.lr_scheduler.OneCycleLR(optimizer, total_steps=total_steps, **params))


def _cosine(optimizer, total_steps, warmup_steps=0, lr_min=0.0, warmup_lr_init=0.0):
    """Linear warm-up to the base LR, then a cosine from the base LR to ``lr_min`` over the rest."""
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=max(total_steps - warmup_steps, 1),
        warmup_prefix=True,
        lr_min=lr_min,
        warmup_t=warmup_steps,
        warmup_lr_init=warmup_lr_init,
        t_in_epochs=False,
    )
    return StepScheduler(scheduler, per_update=True)


def _constant(optimizer, total_steps):
    return StepScheduler(torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0))


SCHEDULERS = {"onecycle": _one_cycle, "cosine": _cosine, "constant": _constant}


def check_scheduler_params(name, params, where):
    """Config-load check of ``scheduler_params`` against the builder of ``name`` (or, for one-cycle, torch's
    OneCycleLR, to which its builder passes them on); the optimiser and total steps come from the code."""
    target = torch.optim.lr_scheduler.OneCycleLR if name == "onecycle" else SCHEDULERS[name]
    check_params(params, target, where, name, supplied=("optimizer", "total_steps"))


def build_scheduler(name, optimizer, total_steps, **params):
    if name not in SCHEDULERS:
        raise KeyError(f"unknown scheduler '{name}': choose from {sorted(SCHEDULERS)}")
    return SCHEDULERS[name](optimizer, total_steps, **params)
