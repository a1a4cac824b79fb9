"""First-shot years (one section per machine type): the section heads of both systems learn section x
attribute classes under ``class_target: auto``, and sections where a machine type has several."""

import numpy as np
import pytest

from asd_tools.artefacts import CONFIG
from asd_tools.backend.embeddings import Embeddings
from asd_tools.config import load_config
from asd_tools.data.corpus import Corpus
from asd_tools.datasets.registry import dataset_spec
from asd_tools.systems.dgmix import recipe as dgmix
from asd_tools.systems.dgmix.config import DGMixConfig
from asd_tools.systems.serial_oe import recipe as serial_oe
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.training.classes import load_classes, read_classes, resolve_class_target
from asd_tools.training.trainer import load_weights
from tests.conftest import TINY_MACHINES, dumped_layout, edited_config

LAYOUT = "dcase2023"
SPEC = dataset_spec(LAYOUT)
MACHINES = [SPEC.dev_machines[0], SPEC.eval_machines[0]]  # a development and an evaluation machine type


@pytest.fixture(scope="module")
def first_shot_dump(tmp_path_factory):
    return dumped_layout(tmp_path_factory, LAYOUT, MACHINES, "first_shot")[1]


def test_auto_follows_the_sections_of_the_training_clips(tiny_dump, first_shot_dump):
    for machine in TINY_MACHINES:  # DCASE 2022: six sections per machine type, the original's classes
        assert resolve_class_target("auto", Corpus(tiny_dump), machine) == "section"
    for machine in MACHINES:  # one section: a one-class head would learn nothing
        assert resolve_class_target("auto", Corpus(first_shot_dump), machine) == "attribute"
        classes = read_classes(Corpus(first_shot_dump), machine, "attribute")
        assert set(classes["section"]) == {0} and len(classes) > 1
    for given in ("section", "attribute"):  # stated targets are kept
        assert resolve_class_target(given, Corpus(first_shot_dump), MACHINES[0]) == given
    with pytest.raises(ValueError, match="not resolved"):
        read_classes(Corpus(first_shot_dump), MACHINES[0], "auto")
    with pytest.raises(ValueError, match="not resolved"):
        load_classes(".", "auto")


def test_system1_learns_attribute_classes_in_a_first_shot_year(first_shot_dump, tmp_path):
    config = edited_config(tmp_path / "c.yaml", "asd_model.tiny.yaml", train__epochs=1, train__save_interval_epochs=1)
    assert load_config(config, SerialOEConfig).train.class_target == "auto"
    machine, expdir = MACHINES[1], tmp_path / "exp"
    serial_oe.SerialOE().train(config, first_shot_dump, machine, MACHINES, expdir, "cpu")
    assert load_config(expdir / CONFIG, SerialOEConfig).train.class_target == "attribute"  # saved resolved
    classes = load_classes(expdir, "attribute")
    assert classes.equals(read_classes(Corpus(first_shot_dump), machine, "attribute"))
    checkpoint = serial_oe.SerialOE().checkpoints(expdir)[0]
    serial_oe.SerialOE().embed(expdir, first_shot_dump, machine, checkpoint, "cpu")
    test = Embeddings.load(expdir / checkpoint / "test.npz")
    assert test.features["class_logits"].shape[1] == len(classes)
    assert test.features["section_logits"].shape[1] == 1  # one section: its best class
    np.testing.assert_allclose(test.features["section_logits"][:, 0], test.features["class_logits"].max(1), rtol=1e-6)


def test_dgmix_finetunes_on_attribute_classes_in_a_first_shot_year(first_shot_dump, tmp_path):
    machine, expdir = MACHINES[0], tmp_path / "exp"
    changes = dict(pretrain__epochs=1, pretrain__save_epochs=[1], embed__checkpoints=["checkpoint-2epochs"])
    config = edited_config(tmp_path / "d.yaml", "dgmix.tiny.yaml", **changes)
    dgmix.DGMix().train(config, first_shot_dump, machine, MACHINES, expdir, "cpu")
    classes = load_classes(expdir / dgmix.FINETUNE, "attribute")
    assert len(classes) > 1
    head = load_weights(expdir, "checkpoint-2epochs", "cpu")
    last = [v for k, v in head.items() if k.startswith("section_head.") and k.endswith("weight")][-1]
    assert last.shape[0] == len(classes)  # one output per attribute class
    dgmix.DGMix().embed(expdir, first_shot_dump, machine, "checkpoint-2epochs", "cpu")
    emb = Embeddings.load(expdir / "checkpoint-2epochs" / "test.npz")
    assert np.isfinite(emb.features["embedding"]).all()
    assert load_config(expdir / CONFIG, DGMixConfig).finetune.class_target == "auto"  # resolved per run
