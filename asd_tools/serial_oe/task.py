"""Outlier-exposure training of one machine type's model (the trainer core's task).

Batches: half positives (the machine type's training clips; ``n_target`` of them replaced
by random target-domain clips), half negatives (training clips of the other machine
types), random 2 s crops read from the memory-mapped dump. One epoch is one pass over
the machine type's source training clips.
Loss: BCE(machine) + w * BCE(section), the section term over samples whose (mixed)
machine label is positive; mixup is applied to a batch with probability cos(pi/2 * t/T).
"""

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, roc_auc_score

from asd_tools.constants import N_SECTIONS, SAMPLE_RATE, WINDOW_SAMPLES
from asd_tools.data.manifest import load_manifest
from asd_tools.data.split import read_list
from asd_tools.data.windows import WindowDataset, random_starts, window_loader, window_starts
from asd_tools.frontend import pitch_shift
from asd_tools.serial_oe.config import OETrainConfig


def mixup_apply_rate(step: int, max_step: int) -> float:
    """Probability of mixing a batch: 1 at the start, 0 at the end (cosine)."""
    return math.cos(math.pi / 2 * min(step / max(max_step, 1), 1.0))


def mixup(waves, targets, alpha, generator):
    """Mix each sample with a random partner; targets (list of tensors) are mixed alike."""
    n = waves.shape[0]
    lam = torch.distributions.Beta(alpha, alpha).sample((n,)) if alpha > 0 else torch.ones(n)
    # Beta sampling uses the global RNG; the partner permutation uses the task's generator.
    perm = torch.randperm(n, generator=generator)
    lam, perm = lam.to(waves.device), perm.to(waves.device)
    mixed = lam[:, None] * waves + (1 - lam[:, None]) * waves[perm]
    mixed_targets = [
        lam.view(-1, *[1] * (t.dim() - 1)) * t + (1 - lam.view(-1, *[1] * (t.dim() - 1))) * t[perm] for t in targets
    ]
    return mixed, mixed_targets


class OutlierExposureTask:
    def __init__(self, cfg: OETrainConfig, dumpdir, machine, machines, device):
        self.cfg, self.device = cfg, torch.device(device)
        self.batch_size = cfg.batch_size
        self.half = cfg.batch_size // 2
        others = [m for m in machines if m != machine]
        if not others:
            raise ValueError("outlier exposure needs at least one other machine type for negatives")
        manifest = load_manifest(dumpdir, machines)
        positives = manifest.loc[read_list(dumpdir, machine, "train")]
        negatives = manifest.loc[[c for m in others for c in read_list(dumpdir, m, "train")]]
        clips = _concat(positives, negatives)
        self.dataset = WindowDataset(clips, dumpdir, WINDOW_SAMPLES)
        self.lengths = clips["length"].to_numpy()
        is_positive = np.arange(len(clips)) < len(positives)
        self.machine_label = torch.as_tensor(is_positive, dtype=torch.float32)
        self.section = torch.tensor(clips["section"].to_numpy(), dtype=torch.long)
        self.source_positions = np.flatnonzero(is_positive & (clips["domain"].to_numpy() == "source"))
        self.target_positions = np.flatnonzero(is_positive & (clips["domain"].to_numpy() == "target"))
        self.negative_positions = np.flatnonzero(~is_positive)
        if cfg.n_target and len(self.target_positions) == 0:
            raise ValueError(f"{machine}: n_target > 0 but the training list has no target-domain clips")
        self._build_validation(dumpdir, machine, others, manifest)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.seed = cfg.seed

    # ---------------------------------------------------------------- batches
    def steps_per_epoch(self):
        return math.ceil(len(self.source_positions) / self.half)

    def epoch_plan(self, epoch):
        """The (position, crop start) items of every batch of ``epoch`` (depends on seed and epoch only)."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.source_positions)
        plan = []
        for step in range(self.steps_per_epoch()):
            positives = order[step * self.half : (step + 1) * self.half]
            if len(positives) < self.half:  # top up the last batch with random source clips
                positives = np.concatenate([positives, rng.choice(self.source_positions, self.half - len(positives))])
            if self.cfg.n_target:
                positives[-self.cfg.n_target :] = rng.choice(self.target_positions, self.cfg.n_target)
            negatives = rng.choice(self.negative_positions, self.half)
            positions = np.concatenate([positives, negatives])
            starts = random_starts(rng, self.lengths[positions], WINDOW_SAMPLES)
            plan.append(list(zip(positions.tolist(), starts.tolist())))
        return plan

    def batches(self, epoch):
        return window_loader(self.dataset, self.epoch_plan(epoch), self.cfg.num_workers, self.device)

    # ---------------------------------------------------------------- loss
    def targets(self, positions):
        machine = self.machine_label[positions]
        section = F.one_hot(self.section[positions], N_SECTIONS).float() * machine[:, None]  # negatives: zeros
        return machine.to(self.device), section.to(self.device)

    def loss(self, model, batch, step, max_step):
        positions, waves = batch
        waves = waves.to(self.device, non_blocking=True)
        machine, section = self.targets(positions)
        if self.cfg.pitch_shift_std > 0:
            shifts = torch.round(torch.randn(len(waves), generator=self.generator) * self.cfg.pitch_shift_std)
            waves = pitch_shift(waves, shifts.to(self.device), SAMPLE_RATE)
        mixed = False
        if self.cfg.use_mixup and torch.rand(1, generator=self.generator).item() < mixup_apply_rate(step, max_step):
            waves, (machine, section) = mixup(waves, [machine, section], self.cfg.mixup_alpha, self.generator)
            mixed = True
        out = model(waves)
        return self._losses(out, machine, section, {"mixup": float(mixed)})

    def _losses(self, out, machine, section, extra):
        machine_loss = F.binary_cross_entropy_with_logits(out["machine"].float(), machine)
        keep = machine > 0
        section_loss = (
            F.binary_cross_entropy_with_logits(out["section"][keep].float(), section[keep])
            if keep.any()
            else machine_loss.new_zeros(())
        )
        loss = machine_loss + self.cfg.section_loss_weight * section_loss
        scalars = {"loss": loss.item(), "machine_loss": machine_loss.item(), "section_loss": section_loss.item()}
        return loss, {**scalars, **extra}

    # ---------------------------------------------------------------- validation
    def _build_validation(self, dumpdir, machine, others, manifest):
        rng = np.random.default_rng(self.cfg.seed)
        positives = manifest.loc[read_list(dumpdir, machine, "valid")]
        negative_ids = []
        for other in others:
            ids = read_list(dumpdir, other, "valid")
            count = min(len(ids), self.cfg.valid_negatives_per_machine)
            negative_ids += list(rng.choice(ids, count, replace=False))
        clips = _concat(positives, manifest.loc[negative_ids])
        self.valid_dataset = WindowDataset(clips, dumpdir, WINDOW_SAMPLES)
        centre = [int(window_starts(n, WINDOW_SAMPLES, 3)[1]) for n in clips["length"]]  # middle window
        self.valid_plan = [
            list(zip(range(i, min(i + self.batch_size, len(clips))), centre[i : i + self.batch_size]))
            for i in range(0, len(clips), self.batch_size)
        ]
        self.valid_machine = torch.as_tensor(np.arange(len(clips)) < len(positives), dtype=torch.float32)
        self.valid_section = torch.tensor(clips["section"].to_numpy(), dtype=torch.long)

    def validate(self, model):
        loader = window_loader(self.valid_dataset, self.valid_plan, self.cfg.num_workers, self.device)
        machine_logits, section_logits, losses, count = [], [], {}, 0
        for positions, waves in loader:
            out = model(waves.to(self.device))
            machine = self.valid_machine[positions].to(self.device)
            section = F.one_hot(self.valid_section[positions], N_SECTIONS).float().to(self.device) * machine[:, None]
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
            f1_score(self.valid_section[positive].numpy(), section_logits[positive].argmax(1).numpy(), average="micro")
        )
        return metrics

    # ---------------------------------------------------------------- state
    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


def _concat(*frames):
    return pd.concat(frames, ignore_index=True)
