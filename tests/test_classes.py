"""System 1's class targets: sections, or (section, attribute) pairs counted from the names."""

import numpy as np
import pandas as pd
import pytest
import torch

from asd_tools.artefacts import CLASSES
from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import load_config
from asd_tools.data.corpus import Corpus
from asd_tools.datasets.registry import DCASE2022
from asd_tools.systems.serial_oe import recipe
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.training.classes import (
    NO_CLASS,
    attribute_classes,
    class_indices,
    one_hot,
    per_section_logits,
    read_classes,
)
from tests.conftest import TINY_MACHINES, edited_config

SECTIONS = DCASE2022.units("fan", "dev") + DCASE2022.units("fan", "eval")  # six sections
N_SECTIONS = 6  # DCASE 2022: sections 00-05


def _clips(rows):
    return pd.DataFrame(rows, columns=["section", "attributes"])


def test_attribute_classes_are_sorted_pairs_and_other_clips_have_none():
    own = _clips([(1, "b"), (0, "x"), (1, "a"), (0, "x")])
    classes = attribute_classes(own)
    assert list(zip(classes["section"], classes["attributes"])) == [(0, "x"), (1, "a"), (1, "b")]
    clips = pd.concat([own, _clips([(1, "a"), (-1, "")])], ignore_index=True)
    is_own = np.array([True] * 4 + [False] * 2)
    assert class_indices(clips, classes, is_own, SECTIONS).tolist() == [2, 0, 1, 0, NO_CLASS, NO_CLASS]
    # sections: the section's position among the machine type's, here its number (pool clips' -1 as 0)
    assert class_indices(clips, None, is_own, SECTIONS).tolist() == [1, 0, 1, 0, 1, 0]
    # a machine type with other sections (counted from its manifest): positions, NO_CLASS for the rest
    assert class_indices(clips, None, is_own, (1, 4)).tolist() == [0, NO_CLASS, 0, NO_CLASS, 0, NO_CLASS]


def test_an_own_clip_outside_the_table_is_an_error():
    classes = attribute_classes(_clips([(0, "x")]))
    with pytest.raises(ValueError, match="outside its training and validation lists"):
        class_indices(_clips([(0, "y")]), classes, np.array([True]), SECTIONS)


def test_one_hot_gives_zero_rows_for_no_class():
    rows = one_hot(torch.tensor([2, NO_CLASS, 0]), 3)
    assert rows.tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]


def test_per_section_logits_take_each_sections_best_class():
    classes = attribute_classes(_clips([(0, "a"), (0, "b"), (2, "c")]))
    logits = torch.tensor([[1.0, 3.0, -2.0], [0.5, -1.0, 4.0]])
    out = per_section_logits(logits, classes, SECTIONS)
    assert out.shape == (2, len(SECTIONS))
    assert out[:, 0].tolist() == [3.0, 0.5]
    assert out[:, 2].tolist() == [-2.0, 4.0]
    assert out[:, 1].tolist() == [-2.0, -1.0]  # no classes: the window's lowest logit
    assert per_section_logits(logits, None, SECTIONS) is logits
    assert per_section_logits(logits, classes, (2, 0)).tolist() == [[-2.0, 3.0], [4.0, 0.5]]  # in the given order


def test_attribute_targets_train_and_embed(tiny_dump, tmp_path):
    from asd_tools.systems.serial_oe.task import OutlierExposureTask

    changes = dict(train__class_target="attribute", train__epochs=1, train__save_interval_epochs=1)
    config = edited_config(tmp_path / "attr.yaml", "asd_model.tiny.yaml", **changes)
    classes = read_classes(Corpus(tiny_dump), "fan", "attribute")
    assert len(classes) > N_SECTIONS  # the tiny set's names carry several attributes per section
    cfg = load_config(config, SerialOEConfig)
    task = OutlierExposureTask(cfg.train, Corpus(tiny_dump), "fan", list(TINY_MACHINES), "cpu", classes)
    positions = np.concatenate([task.sampler.source_positions[:3], task.sampler.negative_positions[:2]])
    _, targets, _ = task.targets(positions)
    assert targets.shape == (5, len(classes))
    assert targets[:3].sum(1).tolist() == [1.0] * 3 and targets[3:].sum().item() == 0
    expdir = tmp_path / "exp"
    recipe.SerialOE().train(config, tiny_dump, "fan", list(TINY_MACHINES), expdir, "cpu")
    assert (expdir / CLASSES).exists()
    checkpoint = recipe.SerialOE().checkpoints(expdir)[0]
    recipe.SerialOE().embed(expdir, tiny_dump, "fan", checkpoint, "cpu")
    test = Embeddings.load(expdir / checkpoint / "test.npz")
    assert test.features["class_logits"].shape[1] == len(classes)
    assert test.features["section_logits"].shape[1] == N_SECTIONS
    best = [test.features["class_logits"][:, classes["section"].to_numpy() == s].max(1) for s in range(3)]
    np.testing.assert_allclose(test.features["section_logits"][:, :3], np.stack(best, 1), rtol=1e-6)
