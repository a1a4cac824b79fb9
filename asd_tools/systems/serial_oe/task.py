"""Outlier-exposure training of one machine type's model (the trainer core's task).

Batches: half positives (the machine type's training clips; ``n_target`` of them replaced
by random target-domain clips), half negatives (training clips of the other machine
types), random 2 s crops read from the memory-mapped dump. One epoch is one pass over
the machine type's source training clips.
Loss: BCE(machine) + w * BCE(section), the section term over samples whose (mixed)
machine label is positive; mixup is applied to a batch with probability cos(pi/2 * t/T).

Domain classifier (``target_batch_size`` > 0): a target part follows the batch, and the loss
adds c(step) * (w_m BCE(machine) + w_s BCE(section) + BCE(domain)) on it plus the domain BCE of
the batch's source positives. ``target_part``, ``target_weight_max_step`` and
``source_domain_loss_in_target_weight`` select the original code's behaviour or the intent.
External outlier exposure: ``negatives`` and ``negative_normalisation`` likewise.
DCASE 2025's supplemental clips (``supplemental``): clean machine clips join the positives (this
type's) or the negatives (the other types'), noise-only clips the negatives (``training_clips``).
"""

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score, roc_auc_score

from asd_tools.audio import pitch_shift
from asd_tools.constants import SAMPLE_RATE, SUPPLEMENTAL, WINDOW_SAMPLES
from asd_tools.data.corpus import Corpus
from asd_tools.data.windows import window_loader, window_starts
from asd_tools.systems.serial_oe.config import OETrainConfig
from asd_tools.systems.serial_oe.sampler import OutlierExposureSampler
from asd_tools.training.classes import class_indices, n_classes, one_hot
from asd_tools.training.losses import domain_loss, outlier_exposure_loss, target_part_loss

# The original trainer's steps_per_epoch before any epoch had ended; its domain classifier derived the
# target-loss weight's max_step from it once, at start-up (train.target_weight_max_step: placeholder).
PLACEHOLDER_STEPS_PER_EPOCH = 99_999


def target_loss_weight(step: int, max_step: int) -> float:
    """c(step) = (1 - cos(min(pi, 2 pi step / max_step))) / 2: 0 at the start, 1 from mid-training on."""
    return (1 - math.cos(min(math.pi, 2 * math.pi * step / max(max_step, 1)))) / 2


def target_weight(cfg: OETrainConfig, step: int, max_step: int) -> float:
    """c(step) over the trainer's ``max_step`` (actual), or over epochs x 99 999 (placeholder, the original)."""
    if cfg.target_weight_max_step == "placeholder":
        max_step = cfg.epochs * PLACEHOLDER_STEPS_PER_EPOCH
    return target_loss_weight(step, max_step)


def mixup_apply_rate(step: int, max_step: int) -> float:
    """Probability of mixing a batch: 1 at the start, 0 at the end (cosine)."""
    return math.cos(math.pi / 2 * min(step / max(max_step, 1), 1.0))


def mixup_rate(cfg: OETrainConfig, step: int, max_step: int, steps_per_epoch: int) -> float:
    """The apply rate over the trainer's ``max_step``, or, in the original's first epoch, over epochs x 99 999."""
    if cfg.mixup_max_step == "first_epoch_placeholder" and step < steps_per_epoch:
        max_step = cfg.epochs * PLACEHOLDER_STEPS_PER_EPOCH
    return mixup_apply_rate(step, max_step)


def mixup(waves, targets, alpha, generator):
    """Mix each sample with a random partner; targets (list of tensors) are mixed alike."""
    n = waves.shape[0]
    lam = torch.distributions.Beta(alpha, alpha).sample((n,)) if alpha > 0 else torch.ones(n)
    # Beta sampling uses the global RNG; the partner permutation uses the task's generator.
    perm = torch.randperm(n, generator=generator)
    return mix(waves, targets, lam.to(waves.device), perm.to(waves.device))


def mix(waves, targets, lam, perm):
    """Sample i becomes lam_i * sample i + (1 - lam_i) * sample perm_i; targets (list of tensors) alike.
    Kept apart from the draws so that a test can fix lam and perm (tests/test_golden_recipe.py)."""
    mixed = lam[:, None] * waves + (1 - lam[:, None]) * waves[perm]
    mixed_targets = [
        lam.view(-1, *[1] * (t.dim() - 1)) * t + (1 - lam.view(-1, *[1] * (t.dim() - 1))) * t[perm] for t in targets
    ]
    return mixed, mixed_targets


SUPPLEMENTAL_LISTS = {"clean": "supplemental_clean", "noise": "supplemental_noise"}


def training_clips(corpus, supplemental, machine, others):
    """(positives, negatives): this type's training clips, then its supplemental clean clips; the other
    types' training clips, then the supplemental clips that ``train.supplemental`` turns into negatives
    (clean: the other types'; noise: every type's)."""
    positives, negatives = [corpus.clips(machine, "train")], [corpus.clips(m, "train") for m in others]
    for kind in supplemental:
        name = SUPPLEMENTAL_LISTS[kind]
        own, theirs = corpus.clips(machine, name), [corpus.clips(m, name) for m in others]
        if not len(own) + sum(map(len, theirs)):
            raise ValueError(
                f"train.supplemental asks for {kind} clips, but no machine type's lists/{name}.txt holds any "
                "(only DCASE 2025 ships supplemental/ folders): remove it from the config"
            )
        if kind == "clean":
            positives.append(own)
            negatives += theirs
        else:
            negatives += [own, *theirs]
        counts = ", ".join(f"{m} {len(c)}" for m, c in zip([machine, *others], [own, *theirs]))
        logging.info(f"{machine}: supplemental {kind} clips used: {counts}")
    return pd.concat(positives), pd.concat(negatives)


class OutlierExposureTask:
    def __init__(self, cfg: OETrainConfig, corpus: Corpus, machine, machines, device, classes=None):
        """``classes``: the attribute table of ``train.class_target: attribute`` (None: sections)."""
        self.cfg, self.device = cfg, torch.device(device)
        self.sections = corpus.sections(machine)  # the section head's sections (section classes)
        self.classes, self.n_classes = classes, n_classes(classes, self.sections)
        self.batch_size = cfg.batch_size + cfg.target_batch_size
        others = [m for m in machines if m != machine]
        if not others:
            raise ValueError("outlier exposure needs at least one other machine type for negatives")
        positives, negatives = training_clips(corpus, cfg.supplemental, machine, others)
        pool = corpus.manifest(cfg.outlier_pool) if cfg.outlier_pool else positives.iloc[:0]
        clips = pd.concat([positives, negatives, pool], ignore_index=True)
        self.dataset = corpus.windows(clips, WINDOW_SAMPLES)
        self.lengths = clips["length"].to_numpy()
        is_positive = np.arange(len(clips)) < len(positives)
        domain = clips["domain"].to_numpy()
        self.machine_label = torch.as_tensor(is_positive, dtype=torch.float32)
        self.domain_label = torch.as_tensor(domain == "target", dtype=torch.float32)
        is_clean = is_positive & (clips["split"] == SUPPLEMENTAL).to_numpy()  # names without attributes
        self.class_index = torch.tensor(
            class_indices(clips, classes, is_positive, self.sections, lenient=is_clean), dtype=torch.long
        )
        n_positives, n_negatives = len(positives), len(negatives)
        self.sampler = OutlierExposureSampler(
            cfg,
            self.lengths,
            source=np.flatnonzero(is_positive & (domain == "source")),
            target=np.flatnonzero(is_positive & (domain == "target")),
            negatives=np.arange(n_positives, n_positives + n_negatives),
            outliers=np.arange(n_positives + n_negatives, len(clips)),
            name=machine,
        )
        self.renormalise = self._renormalisation(clips, corpus, machine)
        self._build_validation(corpus, machine, others)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.seed = cfg.seed

    def _renormalisation(self, clips, corpus: Corpus, machine):
        """Per-clip (scale, shift) that turn a clip stored with its own statistics into one normalised
        with this machine type's: x * std_own / std_m + (mean_own - mean_m) / std_m. None: keep own."""
        if self.cfg.negative_normalisation == "own":
            return None
        folders = clips["array"].map(lambda a: Path(a).parent.as_posix())  # the dump folder holding the clip
        stats = {f: corpus.stats(f) for f in folders.unique()}
        mine = corpus.stats(machine)
        scale = folders.map(lambda f: stats[f]["std"] / mine["std"]).to_numpy()
        shift = folders.map(lambda f: (stats[f]["mean"] - mine["mean"]) / mine["std"]).to_numpy()
        return torch.tensor(scale, dtype=torch.float32), torch.tensor(shift, dtype=torch.float32)

    @staticmethod
    def _apply(renormalise, positions, waves):
        if renormalise is None:
            return waves
        scale, shift = (t[positions].to(waves.device)[:, None] for t in renormalise)
        return waves * scale + shift

    # ---------------------------------------------------------------- batches
    def steps_per_epoch(self):
        return self.sampler.steps_per_epoch()

    def plan(self, epoch):
        return self.sampler.epoch_plan(epoch)

    def loader(self, plan):
        return window_loader(self.dataset, plan, self.cfg.num_workers, self.device)

    def batches(self, epoch):
        return self.loader(self.plan(epoch))

    def seed_batch(self, seed):
        """The mixup and pitch-shift draws of one batch from ``seed`` (the trainer's ``batch_seeds``)."""
        self.generator.manual_seed(seed)

    # ---------------------------------------------------------------- loss
    def targets(self, positions):
        """Machine, class one-hot (zeros for negatives) and domain targets of ``positions``."""
        machine = self.machine_label[positions]
        section = one_hot(self.class_index[positions], self.n_classes) * machine[:, None]
        return machine.to(self.device), section.to(self.device), self.domain_label[positions].to(self.device)

    def loss(self, model, batch, step, max_step):
        positions, waves = batch
        waves = self._apply(self.renormalise, positions, waves.to(self.device, non_blocking=True))
        machine, section, domain = self.targets(positions)
        if self.cfg.pitch_shift_std > 0:
            shifts = torch.round(torch.randn(len(waves), generator=self.generator) * self.cfg.pitch_shift_std)
            waves = pitch_shift(waves, shifts.to(self.device), SAMPLE_RATE)
        main = slice(0, self.cfg.batch_size)
        mixed = False
        rate = mixup_rate(self.cfg, step, max_step, self.steps_per_epoch())
        if self.cfg.use_mixup and torch.rand(1, generator=self.generator).item() < rate:
            waves[main], (machine[main], section[main], domain[main]) = mixup(
                waves[main], [machine[main], section[main], domain[main]], self.cfg.mixup_alpha, self.generator
            )
            mixed = True
        if self.cfg.target_batch_size:
            waves, machine, section, domain = self._mix_targets(positions, waves, machine, section, domain)
        out = model(waves)
        main_out = {k: v[main] for k, v in out.items()}
        loss, scalars = self._losses(main_out, machine[main], section[main], {"mixup": float(mixed)})
        if self.cfg.target_batch_size:
            loss, scalars = self._add_target_loss(loss, scalars, out, (machine, section, domain), step, max_step)
        return loss, scalars

    def _mix_targets(self, positions, waves, machine, section, domain):
        """Mix the first ``n_mixed_targets()`` clips of the target part (see ``train.target_part``).

        target_only: among themselves. original_mixed: mixed clip i becomes lam_i * partner_i +
        (1 - lam_i) * target_i, lam_i ~ Beta(alpha, alpha), machine label and section one-hot alike
        (the partner's own section, also for another machine type's clip, as the original did); the
        partners (the batch's last rows) are then dropped. Returns the tensors the model sees.
        """
        first, count = self.cfg.batch_size, self.sampler.n_mixed_targets()
        part = slice(first, first + count)
        alpha = self.cfg.mixup_alpha
        if self.cfg.target_part == "target_only":
            if count >= 2:
                waves[part], (section[part],) = mixup(waves[part], [section[part]], alpha, self.generator)
            return waves, machine, section, domain
        if count == 0:
            return waves, machine, section, domain
        partners = positions[-count:]
        partner_wave = waves[-count:]
        partner_machine = self.machine_label[partners].to(waves.device)
        partner_section = one_hot(self.class_index[partners], self.n_classes).to(waves.device)
        waves, machine, section, domain = (t[:-count].clone() for t in (waves, machine, section, domain))
        lam = torch.distributions.Beta(alpha, alpha).sample((count,)).to(waves.device)
        waves[part] = lam[:, None] * partner_wave + (1 - lam[:, None]) * waves[part]
        machine[part] = lam * partner_machine + (1 - lam) * machine[part]
        section[part] = lam[:, None] * partner_section + (1 - lam[:, None]) * section[part]
        return waves, machine, section, domain

    def _add_target_loss(self, loss, scalars, out, targets, step, max_step):
        """Domain classifier: + c(step) * (w_m BCE(machine) + w_s BCE(section) + BCE(domain)) on the target
        part, + the domain BCE of the batch's n_pos positives (label: their domain, source = 0), outside
        c(step) or, with ``source_domain_loss_in_target_weight`` (the original), inside it.
        """
        machine, section, domain = targets
        target = slice(self.cfg.batch_size, None)
        positives = slice(0, self.cfg.n_pos)
        target_loss = target_part_loss(
            {k: v[target] for k, v in out.items()},
            machine[target],
            section[target],
            self.cfg.target_machine_weight,
            self.cfg.section_loss_weight,
        )
        source_domain = domain_loss(out["domain"][positives], domain[positives])
        weight = target_weight(self.cfg, step, max_step)
        if self.cfg.source_domain_loss_in_target_weight:
            loss = loss + weight * (target_loss + source_domain)
        else:
            loss = loss + source_domain + weight * target_loss
        scalars = {
            **scalars,
            "loss": loss.item(),
            "target_loss": target_loss.item(),
            "target_weight": weight,
            "source_domain_loss": source_domain.item(),
        }
        return loss, scalars

    def _losses(self, out, machine, section, extra):
        loss, machine_loss, section_loss = outlier_exposure_loss(
            out["machine"], out["section"], machine, section, self.cfg.section_loss_weight
        )
        scalars = {"loss": loss.item(), "machine_loss": machine_loss.item(), "section_loss": section_loss.item()}
        return loss, {**scalars, **extra}

    # ---------------------------------------------------------------- validation
    def _build_validation(self, corpus, machine, others):
        rng = np.random.default_rng(self.cfg.seed)
        positives = corpus.clips(machine, "valid")
        negatives = []
        for other in others:
            ids = corpus.ids(other, "valid")
            count = min(len(ids), self.cfg.valid_negatives_per_machine)
            negatives.append(corpus.manifest(other).loc[list(rng.choice(ids, count, replace=False))])
        clips = pd.concat([positives, *negatives], ignore_index=True)
        self.valid_dataset = corpus.windows(clips, WINDOW_SAMPLES)
        self.valid_renormalise = self._renormalisation(clips, corpus, machine)
        centre = [int(window_starts(n, WINDOW_SAMPLES, 3)[1]) for n in clips["length"]]  # middle window
        self.valid_plan = [
            list(zip(range(i, min(i + self.batch_size, len(clips))), centre[i : i + self.batch_size]))
            for i in range(0, len(clips), self.batch_size)
        ]
        self.valid_machine = torch.as_tensor(np.arange(len(clips)) < len(positives), dtype=torch.float32)
        is_positive = np.arange(len(clips)) < len(positives)
        self.valid_class = torch.tensor(
            class_indices(clips, self.classes, is_positive, self.sections), dtype=torch.long
        )

    def validate(self, model):
        loader = window_loader(self.valid_dataset, self.valid_plan, self.cfg.num_workers, self.device)
        machine_logits, section_logits, losses, count = [], [], {}, 0
        for positions, waves in loader:
            out = model(self._apply(self.valid_renormalise, positions, waves.to(self.device)))
            machine = self.valid_machine[positions].to(self.device)
            section = one_hot(self.valid_class[positions], self.n_classes).to(self.device) * machine[:, None]
            _, scalars = self._losses(out, machine, section, {})
            for k, v in scalars.items():
                losses[k] = losses.get(k, 0.0) + v * len(positions)
            count += len(positions)
            machine_logits.append(out["machine"].float().cpu())
            section_logits.append(out["section"].float().cpu())
        machine_logits, section_logits = torch.cat(machine_logits), torch.cat(section_logits)
        positive = self.valid_machine.bool()
        metrics = {k: v / count for k, v in losses.items()}
        metrics["machine_auc"] = float(roc_auc_score(self.valid_machine.numpy(), machine_logits.numpy()))
        metrics["section_f1"] = float(
            f1_score(self.valid_class[positive].numpy(), section_logits[positive].argmax(1).numpy(), average="micro")
        )
        return metrics

    # ---------------------------------------------------------------- state
    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])
