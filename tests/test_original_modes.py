"""The original code's behaviours behind switches: the domain classifier and external outlier exposure.

Domain classifier (ibkuroyagi/dcase2022_task2_challenge_recipe, domain_classifier_trainer.py and friends):
the target-loss weight over a placeholder max_step, the target part that mixes clips of any machine type
into target clips, the source domain BCE inside the weight. External outlier exposure (audioset_v000-v003):
negatives drawn from the union of the other types and the pool, everything normalised with the positive
type's statistics, five fixed crops per pool clip.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from asd_tools.config import load_config
from asd_tools.constants import WINDOW_SAMPLES
from asd_tools.data.corpus import Corpus
from asd_tools.data.dump import dump_pool
from asd_tools.data.synthetic import generate_outlier_pool
from asd_tools.systems.serial_oe.config import OETrainConfig, SerialOEConfig
from asd_tools.systems.serial_oe.task import (
    PLACEHOLDER_STEPS_PER_EPOCH,
    OutlierExposureTask,
    target_loss_weight,
    target_weight,
)
from tests.conftest import TINY_MACHINES
from tests.test_training import CONF

N_SECTIONS = 6  # DCASE 2022: sections 00-05

# ------------------------------------------------------------------ the target-loss weight c(step)


def test_placeholder_max_step_keeps_the_target_weight_near_zero_for_the_whole_run():
    cfg = OETrainConfig(batch_size=32, target_batch_size=32, epochs=50, target_weight_max_step="placeholder")
    # DCASE 2022, one machine type: 5940 source training clips; 16 positives per step
    for source_clips, bound in ((round(5940 * 0.85), 1e-4), (round(5940 * 0.9), 1.11e-4)):
        steps = cfg.epochs * math.ceil(source_clips / 16)  # the trainer's actual max_step
        weights = [target_weight(cfg, s, steps) for s in range(steps)]
        assert max(weights) <= bound  # 0.15 split (ours): <= 1e-4; the original's 0.1 split: about 1.1e-4
        assert weights == sorted(weights)  # still on the rising flank when training ends
    assert target_weight(cfg, 16700, 16700) == pytest.approx(
        (1 - math.cos(2 * math.pi * 16700 / (50 * PLACEHOLDER_STEPS_PER_EPOCH))) / 2
    )


def test_actual_max_step_rises_to_one_at_mid_training_and_stays_there():
    cfg = OETrainConfig(batch_size=32, target_batch_size=16, epochs=50)
    total = 1000
    assert target_weight(cfg, 0, total) == 0.0
    assert target_weight(cfg, 250, total) == pytest.approx(0.5)
    assert target_weight(cfg, 500, total) == pytest.approx(1.0)
    assert target_weight(cfg, 750, total) == 1.0 and target_weight(cfg, 999, total) == 1.0  # min(pi, .) holds it
    weights = [target_weight(cfg, s, total) for s in range(total)]
    assert weights == sorted(weights)
    assert target_loss_weight(300, 1000) == pytest.approx((1 - math.cos(0.6 * math.pi)) / 2)


# ------------------------------------------------------------------ the domain classifier's batches and loss


def _dc_config(tmp_path, name="asd_model.domain_classifier_tiny.yaml", **overrides):
    """The tiny domain classifier with ``train`` keys overridden."""
    cfg = load_config(CONF / name, SerialOEConfig)
    for key, value in overrides.items():
        setattr(cfg.train, key, value)
    cfg.train.__post_init__()
    return cfg


class Recorder(torch.nn.Module):
    """A stand-in model: fixed logits per row, and the waves it was given."""

    def forward(self, waves):
        self.seen = waves.clone()
        n = len(waves)
        gen = torch.Generator().manual_seed(n)
        return {
            "embedding": torch.zeros(n, 4),
            "machine": torch.linspace(-2, 2, n),
            "section": torch.randn(n, N_SECTIONS, generator=gen),
            "domain": torch.linspace(1.5, -1.5, n),
        }


def _batch(task, epoch=1):
    return next(iter(task.batches(epoch)))


def test_original_target_part_mixes_clips_of_any_machine_type_into_half_of_the_target_clips(tiny_dump, tmp_path):
    cfg = _dc_config(tmp_path, target_part="original_mixed", target_batch_size=4, use_mixup=False).train
    task = OutlierExposureTask(cfg, Corpus(tiny_dump), "fan", list(TINY_MACHINES), "cpu")
    n_main, n_target, n_mix = cfg.batch_size, cfg.target_batch_size, task.sampler.n_mixed_targets()
    assert n_mix == 2
    targets = set(task.sampler.target_positions.tolist())
    partners_allowed = set(task.sampler.source_positions.tolist()) | set(task.sampler.negative_positions.tolist())
    partners_seen = []
    for epoch in (1, 2, 3):
        for batch in task.sampler.epoch_plan(epoch):
            positions = [p for p, _ in batch]
            assert len(positions) == n_main + n_target + n_mix
            assert all(p in targets for p in positions[n_main : n_main + n_target])
            assert all(p in partners_allowed for p in positions[n_main + n_target :])  # never a target clip of fan
            partners_seen += positions[n_main + n_target :]
    # partners come from this type's source clips and from the other type alike
    assert set(partners_seen) & set(task.sampler.source_positions.tolist())
    assert set(partners_seen) & set(task.sampler.negative_positions.tolist())

    positions, waves = _batch(task)
    machine, section, domain = task.targets(positions)
    out_waves, out_machine, out_section, out_domain = task._mix_targets(
        positions, waves.clone(), machine.clone(), section.clone(), domain.clone()
    )
    assert len(out_waves) == len(out_machine) == len(out_section) == n_main + n_target  # partners dropped
    assert torch.equal(out_waves[:n_main], waves[:n_main])
    first = n_main
    for i in range(n_mix):
        row, partner = first + i, n_main + n_target + i
        target_wave, partner_wave = waves[row], waves[partner]
        # out = lam * partner + (1 - lam) * target: recover lam and check the labels were mixed alike
        lam = (
            torch.dot(out_waves[row] - target_wave, partner_wave - target_wave)
            / (partner_wave - target_wave).pow(2).sum()
        )
        assert 0 <= lam <= 1
        assert torch.allclose(out_waves[row], lam * partner_wave + (1 - lam) * target_wave, atol=1e-5)
        partner_machine = task.machine_label[positions[partner]]
        assert out_machine[row] == pytest.approx(float(lam * partner_machine + (1 - lam)), abs=1e-5)
        raw_partner_section = F.one_hot(task.class_index[positions[partner]], N_SECTIONS).float()  # not zeroed
        expected = lam * raw_partner_section + (1 - lam) * section[row]
        assert torch.allclose(out_section[row], expected, atol=1e-5)
    # the rest of the target part: target clips as they are
    assert torch.equal(out_waves[first + n_mix :], waves[first + n_mix : n_main + n_target])
    assert torch.all(out_machine[first + n_mix :] == 1)
    # the model sees the main batch and the target part, not the partners
    model = Recorder()
    task.loss(model, (positions, waves.clone()), 0, 10)
    assert len(model.seen) == n_main + n_target


def test_intended_target_part_mixes_target_clips_among_themselves(tiny_dump, tmp_path):
    cfg = _dc_config(tmp_path, use_mixup=False).train
    assert cfg.target_part == "target_only"
    task = OutlierExposureTask(cfg, Corpus(tiny_dump), "fan", list(TINY_MACHINES), "cpu")
    positions, waves = _batch(task)
    n_main, n_target = cfg.batch_size, cfg.target_batch_size
    assert len(positions) == n_main + n_target  # no partners
    machine, section, domain = task.targets(positions)
    out_waves, out_machine, out_section, _ = task._mix_targets(
        positions, waves.clone(), machine.clone(), section.clone(), domain.clone()
    )
    part = waves[n_main : n_main + task.sampler.n_mixed_targets()]
    for row in out_waves[n_main : n_main + task.sampler.n_mixed_targets()]:
        # a convex combination of two rows of the mixed share itself
        assert any(
            torch.allclose(row, lam * a + (1 - lam) * b, atol=1e-4)
            for a in part
            for b in part
            for lam in [torch.dot(row - b, a - b) / max((a - b).pow(2).sum(), 1e-12)]
        )
    assert torch.all(out_machine[n_main:] == 1)


@pytest.mark.parametrize("inside", [True, False])
def test_domain_classifier_loss_combination(tiny_dump, tmp_path, inside):
    cfg = _dc_config(tmp_path, use_mixup=False, target_mix_ratio=0.0, source_domain_loss_in_target_weight=inside).train
    task = OutlierExposureTask(cfg, Corpus(tiny_dump), "fan", list(TINY_MACHINES), "cpu")
    positions, waves = _batch(task)
    model = Recorder()
    step, max_step = 25, 100  # c = 0.5
    loss, scalars = task.loss(model, (positions, waves), step, max_step)
    out = model(waves)
    machine, section, domain = task.targets(positions)
    main, target, pos = slice(0, cfg.batch_size), slice(cfg.batch_size, None), slice(0, cfg.n_pos)
    bce = F.binary_cross_entropy_with_logits
    keep = machine[main] > 0
    source_loss = bce(out["machine"][main], machine[main]) + 10 * bce(out["section"][main][keep], section[main][keep])
    target_loss = (
        0.5 * bce(out["machine"][target], torch.ones(cfg.target_batch_size))
        + 10 * bce(out["section"][target], section[target])
        + bce(out["domain"][target], torch.ones(cfg.target_batch_size))
    )
    source_domain = bce(out["domain"][pos], torch.zeros(cfg.n_pos))  # the positives are source clips (label 0)
    assert domain[: cfg.n_pos - cfg.n_target].sum() == 0
    weight = 0.5
    if inside:  # the original: loss = source loss + c * (target terms + both domain BCEs)
        expected = source_loss + weight * (target_loss + bce(out["domain"][pos], domain[pos]))
    else:  # the intent: the source positives' domain BCE at full weight from the start
        expected = source_loss + bce(out["domain"][pos], domain[pos]) + weight * target_loss
    assert scalars["target_weight"] == pytest.approx(weight)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert scalars["target_loss"] == pytest.approx(target_loss.item(), rel=1e-6)
    if cfg.n_target == 0:
        assert scalars["source_domain_loss"] == pytest.approx(source_domain.item(), rel=1e-6)


def test_shipped_domain_classifier_configs_name_which_behaviour_they_run():
    original = load_config(CONF / "asd_model.domain_classifier.yaml", SerialOEConfig)
    intended = load_config(CONF / "asd_model.domain_classifier_intended.yaml", SerialOEConfig)
    tiny = load_config(CONF / "asd_model.domain_classifier_tiny.yaml", SerialOEConfig)
    o, i = original.train, intended.train
    assert (original.frontend.time_mask, original.frontend.freq_mask) == (0, 0)  # specaug=False in the original
    assert (intended.frontend.time_mask, intended.frontend.freq_mask) == (16, 16)
    assert (o.use_mixup, o.target_part, o.target_weight_max_step, o.source_domain_loss_in_target_weight) == (
        False,
        "original_mixed",
        "placeholder",
        True,
    )
    assert (o.batch_size, o.target_batch_size, o.optimizer_params["weight_decay"]) == (32, 32, 0.01)
    assert (i.use_mixup, i.target_part, i.target_weight_max_step, i.source_domain_loss_in_target_weight) == (
        True,
        "target_only",
        "actual",
        False,
    )
    assert (i.batch_size, i.target_batch_size, i.optimizer_params["weight_decay"]) == (32, 16, 0.0)
    for key in ("target_part", "target_weight_max_step", "source_domain_loss_in_target_weight", "use_mixup"):
        assert getattr(tiny.train, key) == getattr(i, key), key  # CI runs the intended behaviour


# ------------------------------------------------------------------ external outlier exposure


@pytest.fixture(scope="module")
def pool_dump(tiny_dump, tmp_path_factory):
    """The tiny dump's machine types (linked) plus a 30-clip outlier pool, in a dump folder of its own."""
    dumpdir = tmp_path_factory.mktemp("pool_dump")
    for machine in TINY_MACHINES:
        (dumpdir / machine).symlink_to(Path(tiny_dump) / machine, target_is_directory=True)
    folder = tmp_path_factory.mktemp("pool_wavs")
    generate_outlier_pool(folder, count=30, seconds=3.0)
    dump_pool(folder, dumpdir)
    return dumpdir


def _pool_config(name="asd_model.audioset_v000.yaml", **overrides):
    """An audioset config scaled to the tiny data (batch 16)."""
    cfg = load_config(CONF / name, SerialOEConfig).train
    for key, value in overrides.items():
        setattr(cfg, key, value)
    cfg.batch_size, cfg.num_workers = 16, 0
    cfg.n_pos, cfg.n_neg = (8, 8) if cfg.negatives == "union" else (6, 6)  # separate: 4 pool clips
    cfg.__post_init__()
    return cfg


def test_union_draw_gives_the_pool_its_share_of_the_union(pool_dump):
    cfg = _pool_config()
    task = OutlierExposureTask(cfg, Corpus(pool_dump), "fan", list(TINY_MACHINES), "cpu")
    n_pool, n_other = len(task.sampler.outlier_positions), len(task.sampler.negative_positions)
    assert n_pool == 30
    pool = set(task.sampler.outlier_positions.tolist())
    draws = [p for epoch in range(1, 41) for batch in task.sampler.epoch_plan(epoch) for p, _ in batch[cfg.n_pos :]]
    assert len(draws) == 40 * task.steps_per_epoch() * cfg.n_neg  # no share reserved for the pool
    share, expected = np.mean([p in pool for p in draws]), n_pool / (n_pool + n_other)
    assert abs(share - expected) < 4 * math.sqrt(expected * (1 - expected) / len(draws))
    # the separate draw reserves the rest of the batch for the pool instead
    separate = OutlierExposureTask(
        _pool_config(negatives="separate"), Corpus(pool_dump), "fan", list(TINY_MACHINES), "cpu"
    )
    for batch in separate.sampler.epoch_plan(1):
        positions = [p for p, _ in batch]
        assert not pool & set(positions[:12]) and set(positions[12:]) <= pool


def test_union_needs_a_pool_and_a_full_batch():
    with pytest.raises(ValueError, match="union"):
        OETrainConfig(batch_size=16, negatives="union")
    with pytest.raises(ValueError, match="n_pos \\+ train.n_neg == train.batch_size"):
        OETrainConfig(batch_size=16, n_pos=6, n_neg=6, negatives="union", outlier_pool="outlier_pool")


def _raw(path, start):
    wave, _ = sf.read(path, dtype="float64")
    return wave[start : start + WINDOW_SAMPLES]


@pytest.mark.parametrize("mode", ["positive", "own"])
def test_negatives_and_pool_normalised_with_the_positive_type_statistics(pool_dump, mode):
    cfg = _pool_config(use_mixup=False, negative_normalisation=mode)
    task = OutlierExposureTask(cfg, Corpus(pool_dump), "fan", list(TINY_MACHINES), "cpu")
    names = (*TINY_MACHINES, "outlier_pool")
    stats = {m: json.loads((Path(pool_dump) / m / "stats.json").read_text()) for m in names}
    assert stats["outlier_pool"] != stats["fan"] != stats["valve"]
    clips, kinds = task.dataset.clips, set()
    for batch in task.sampler.epoch_plan(1)[:4]:
        positions = torch.tensor([p for p, _ in batch])
        starts = [s for _, s in batch]
        waves = torch.stack([task.dataset[(int(p), s)][1] for p, s in zip(positions, starts)])
        model = Recorder()
        task.loss(model, (positions, waves), 0, 10)
        for row, (p, start) in enumerate(zip(positions.tolist(), starts)):
            clip = clips.iloc[p]
            own = stats["outlier_pool" if clip["machine"] == "outlier" else clip["machine"]]
            used = stats["fan"] if mode == "positive" else own
            expected = (_raw(clip["path"], start) - used["mean"]) / used["std"]
            assert np.allclose(model.seen[row].numpy(), expected, atol=1e-4), (clip["machine"], mode)
            kinds.add(clip["machine"])
    assert kinds == {"fan", "valve", "outlier"}  # positives, the other type and the pool all checked


def test_pool_clips_are_read_at_one_of_five_fixed_crops(pool_dump):
    cfg = _pool_config()
    task = OutlierExposureTask(cfg, Corpus(pool_dump), "fan", list(TINY_MACHINES), "cpu")
    pool = set(task.sampler.outlier_positions.tolist())
    seen = set()
    for epoch in range(1, 6):
        for batch in task.sampler.epoch_plan(epoch):
            for p, start in batch:
                if p in pool:
                    hop = (task.lengths[p] - WINDOW_SAMPLES) // 5
                    assert start in {hop * i for i in range(5)}
                    seen.add(start // max(hop, 1))
    assert seen == set(range(5))


def test_audioset_configs_are_the_original_four_and_a_balanced_variant():
    configs = {
        v: load_config(CONF / f"asd_model.audioset_{v}.yaml", SerialOEConfig).train
        for v in ("v000", "v001", "v002", "v003")
    }
    for cfg in configs.values():
        assert (cfg.batch_size, cfg.n_pos, cfg.n_neg, cfg.negatives) == (128, 64, 64, "union")
        assert (cfg.negative_normalisation, cfg.pool_fixed_crops, cfg.outlier_pool) == ("positive", 5, "outlier_pool")
        assert cfg.optimizer_params["weight_decay"] == 0.0 and cfg.epochs == 300
    assert [(c.use_mixup, c.n_target) for c in configs.values()] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    balanced = load_config(CONF / "asd_model.audioset_balanced.yaml", SerialOEConfig).train
    assert (balanced.n_pos, balanced.n_neg, balanced.negatives, balanced.negative_normalisation) == (
        48,
        48,
        "separate",
        "own",
    )


def test_original_mixup_rate_stays_one_through_the_first_epoch():
    from asd_tools.systems.serial_oe.config import OETrainConfig
    from asd_tools.systems.serial_oe.task import mixup_rate

    actual = OETrainConfig(epochs=4)
    original = OETrainConfig(epochs=4, mixup_max_step="first_epoch_placeholder")
    steps_per_epoch, max_step = 10, 40
    # last step of epoch 1: the real schedule has decayed, the original's is still ~1
    assert mixup_rate(actual, 9, max_step, steps_per_epoch) == pytest.approx(math.cos(math.pi / 2 * 9 / 40))
    assert mixup_rate(original, 9, max_step, steps_per_epoch) > 1 - 1e-8
    # from epoch 2 on both follow the real step count
    assert mixup_rate(original, 10, max_step, steps_per_epoch) == mixup_rate(actual, 10, max_step, steps_per_epoch)
