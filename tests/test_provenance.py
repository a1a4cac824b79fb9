"""Stale or mixed outputs are recomputed or refused, never trusted because a file exists."""

import json
import shutil

import numpy as np
import pytest
import yaml

from asd_tools.data.dump import dump_machine
from asd_tools.data.manifest import load_manifest
from asd_tools.data.split import read_list, write_lists
from asd_tools.provenance import FORMAT, OtherFormatError, Provenance, differences, read_record, record_digest
from asd_tools.systems.serial_oe import recipe
from asd_tools.training.experiment import StaleExperiment, claim_training_dir
from tests.conftest import TINY_MACHINES, edited_config, make_layout, write_wav


def test_record_names_what_changed(tmp_path):
    first = Provenance(tmp_path, "embed", {"checkpoint": "a"}, {"embed": {"n_split": 10}})
    assert first.changes() is None and not first.is_current()
    first.write()
    assert Provenance(tmp_path, "embed", {"checkpoint": "a"}, {"embed": {"n_split": 10}}).is_current()
    changed = Provenance(tmp_path, "embed", {"checkpoint": "b"}, {"embed": {"n_split": 5}})
    assert changed.changes() == ["input checkpoint changed", "embed.n_split: 10 -> 5"]
    assert differences(
        {"stage": "x", "inputs": {}, "settings": {}}, {"stage": "x", "inputs": {"gt": "1"}, "settings": {}}
    )
    # a record of another stage in the same folder is independent
    assert Provenance(tmp_path, "detect", {}, {}).changes() is None


def test_dump_and_lists_follow_the_audio_files(tmp_path, caplog):
    root = make_layout(tmp_path / "data")
    dumpdir = tmp_path / "dump"
    dump_machine(root, "fan", dumpdir)
    write_lists(dumpdir, "fan", 0.25, 0)
    before = read_record(dumpdir / "fan", "dump")
    # unchanged audio: skipped
    dump_machine(root, "fan", dumpdir)
    assert read_record(dumpdir / "fan", "dump") == before
    # a clip added after the dump: re-dumped, and the lists follow
    write_wav(root / "dev/fan/train/section_00_source_train_normal_0100_a_1.wav", 3.0, seed=7)
    with caplog.at_level("WARNING"):
        dump_machine(root, "fan", dumpdir)
    assert "stale" in caplog.text and "input audio changed" in caplog.text
    assert "fan/dev/train/section_00_source_train_normal_0100_a_1" in load_manifest(dumpdir, ["fan"]).index
    write_lists(dumpdir, "fan", 0.25, 0)
    listed = read_list(dumpdir, "fan", "train") + read_list(dumpdir, "fan", "valid")
    assert "fan/dev/train/section_00_source_train_normal_0100_a_1" in listed
    # a clip removed: re-dumped again
    (root / "dev/fan/train/section_00_source_train_normal_0100_a_1.wav").unlink()
    dump_machine(root, "fan", dumpdir)
    assert "fan/dev/train/section_00_source_train_normal_0100_a_1" not in load_manifest(dumpdir, ["fan"]).index


def _edited_config(tmp_path, name, **changes):
    """The tiny config with ``section.key`` values replaced (e.g. train__epochs=3)."""
    return edited_config(tmp_path / f"{name}.yaml", "asd_model.tiny.yaml", **changes)


@pytest.fixture(scope="module")
def trained(tiny_dump, tmp_path_factory):
    """One tiny System 1 model on fan (and its config), trained once for the tests below."""
    folder = tmp_path_factory.mktemp("trained")
    config = _edited_config(folder, "base")
    expdir = folder / "exp"
    recipe.SerialOE().train(config, tiny_dump, "fan", list(TINY_MACHINES), expdir, "cpu")
    return expdir, config


def _copy(expdir, tmp_path):
    target = tmp_path / "exp"
    shutil.copytree(expdir, target)
    return target


@pytest.mark.slow
def test_edited_training_settings_stop_the_run(trained, tiny_dump, tmp_path):
    expdir, _ = trained
    expdir = _copy(expdir, tmp_path)
    saved = (expdir / "config.yaml").read_text()
    for change, message in (
        ({"train__epochs": 3}, "train.epochs: 2 -> 3"),
        ({"model__params": {"embedding_size": 64}}, "model.params.embedding_size"),
    ):
        config = _edited_config(tmp_path, "edited", **change)
        with pytest.raises(StaleExperiment, match=message) as err:
            recipe.SerialOE().train(config, tiny_dump, "fan", list(TINY_MACHINES), expdir, "cpu")
        assert "--force true" in str(err.value)
        # the saved config still describes the model that is there
        assert (expdir / "config.yaml").read_text() == saved


def test_training_on_changed_data_stops_the_run(trained, tiny_dump, tmp_path):
    expdir, config = trained
    expdir = _copy(expdir, tmp_path)
    dumpdir = tmp_path / "dump"
    shutil.copytree(tiny_dump, dumpdir)
    write_lists(dumpdir, "valve", 0.3, 1)  # other lists of a negative machine type
    with pytest.raises(StaleExperiment, match="input lists/valve/train changed"):
        recipe.SerialOE().train(config, dumpdir, "fan", list(TINY_MACHINES), expdir, "cpu")


def test_later_sections_follow_the_config_and_make_embeddings_stale(trained, tiny_dump, tmp_path):
    expdir, _ = trained
    expdir = _copy(expdir, tmp_path)
    recipe.SerialOE().embed(expdir, tiny_dump, "fan", "checkpoint-best", "cpu")
    windows = len(np.load(expdir / "checkpoint-best/test.npz")["window_clip"])
    clips = len(read_list(tiny_dump, "fan", "test"))
    assert windows == 3 * clips
    config = _edited_config(tmp_path, "more_windows", embed__n_split=5)
    recipe.SerialOE().train(config, tiny_dump, "fan", list(TINY_MACHINES), expdir, "cpu")  # training itself is current
    assert yaml.safe_load((expdir / "config.yaml").read_text())["embed"]["n_split"] == 5
    recipe.SerialOE().embed(expdir, tiny_dump, "fan", "checkpoint-best", "cpu")
    assert len(np.load(expdir / "checkpoint-best/test.npz")["window_clip"]) == 5 * clips


def test_force_retrains_and_keeps_the_old_model(trained, tiny_dump, tmp_path):
    expdir, _ = trained
    expdir = _copy(expdir, tmp_path)
    old = (expdir / "checkpoint-best.pt").read_bytes()
    config = _edited_config(tmp_path, "three", train__epochs=3)
    recipe.SerialOE().train(config, tiny_dump, "fan", list(TINY_MACHINES), expdir, "cpu", force=True)
    replaced = list(expdir.glob("replaced-*"))
    assert len(replaced) == 1 and (replaced[0] / "checkpoint-best.pt").read_bytes() == old
    assert yaml.safe_load((expdir / "config.yaml").read_text())["train"]["epochs"] == 3
    assert "epochs: 3" in (expdir / "train.done").read_text()


def test_outputs_without_a_record_are_not_trusted(tmp_path):
    (tmp_path / "checkpoint-last.pt").write_bytes(b"made by an older version")
    with pytest.raises(StaleExperiment, match="no provenance_train.json"):
        claim_training_dir(Provenance(tmp_path, "train", {}, {}), force=False)


def test_a_folder_killed_before_its_first_checkpoint_restarts_with_the_new_settings(tmp_path, caplog):
    """Issue 36, fault 1: a record, config, log and TensorBoard files but no checkpoint hold no model."""
    Provenance(tmp_path, "train", {}, {"train": {"epochs": 2}}).write()
    (tmp_path / "config.yaml").write_text("train: {epochs: 2}\n")
    (tmp_path / "train.log").write_text("killed\n")
    (tmp_path / "tensorboard").mkdir()
    (tmp_path / "tensorboard" / "events.out").write_bytes(b"x")
    edited = Provenance(tmp_path, "train", {}, {"train": {"epochs": 3}})
    with caplog.at_level("WARNING"):
        claim_training_dir(edited, force=False)
    assert edited.changes() == []  # the record now describes the run about to start
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "no model there yet" in warnings[0] and "afresh" in warnings[0]
    assert not (tmp_path / "tensorboard").exists() and (tmp_path / "train.log").exists()
    # a folder with a checkpoint still stops the run
    (tmp_path / "checkpoint-last.pt").write_bytes(b"a model")
    with pytest.raises(StaleExperiment, match="holds a model"):
        claim_training_dir(Provenance(tmp_path, "train", {}, {"train": {"epochs": 4}}), force=False)


# One format for every record (provenance.FORMAT): older outputs are never read


def test_a_current_record_round_trips_with_todays_format(tmp_path):
    record = Provenance(tmp_path, "detect", {"embeddings": "e1"}, {"detect": {"ks": [1, 2]}}, info={"note": "x"})
    record.write()
    stored = read_record(tmp_path, "detect")
    assert stored == record.record and stored["format"] == FORMAT
    assert Provenance(tmp_path, "detect", {"embeddings": "e1"}, {"detect": {"ks": [1, 2]}}).is_current()
    assert record_digest(tmp_path, "detect") == record_digest(tmp_path, "detect")


@pytest.mark.parametrize("older", [FORMAT - 1, 1, None])
def test_a_record_of_an_older_format_fails_with_one_message_naming_the_file_and_the_fix(tmp_path, older):
    record = Provenance(tmp_path, "detect", {"embeddings": "e1"}, {})
    record.write()
    stored = json.loads(record.path.read_text())
    if older is None:
        del stored["format"]  # records before formats were numbered
    else:
        stored["format"] = older
    record.path.write_text(json.dumps(stored))
    message = (
        rf"^{record.path}: written by an older asd_tools \(format {older}; this one reads format {FORMAT}\): "
        r"re-run that stage with --force \(asd.sh --force true\), or the whole recipe"
    )
    with pytest.raises(OtherFormatError, match=message):
        record.is_current()  # never taken as merely stale (that is what kept code for older formats)
    with pytest.raises(OtherFormatError, match=message):
        record_digest(tmp_path, "detect")  # nor read by the next stage
    assert not record.is_current(force=True)  # --force replaces it without reading it
    record.write()
    assert record.is_current()


def test_a_model_of_an_older_format_is_kept_unless_forced(tmp_path):
    record = Provenance(tmp_path, "train", {}, {"train": {"epochs": 2}})
    record.write()
    (tmp_path / "checkpoint-last.pt").write_bytes(b"model")
    stored = json.loads(record.path.read_text())
    record.path.write_text(json.dumps({**stored, "format": FORMAT - 1}))
    with pytest.raises(OtherFormatError, match="written by an older asd_tools"):
        claim_training_dir(record, force=False)
    assert (tmp_path / "checkpoint-last.pt").exists()
    claim_training_dir(record, force=True)
    assert [p.name for p in tmp_path.glob("replaced-*/*.pt")] == ["checkpoint-last.pt"]
    assert read_record(tmp_path, "train")["format"] == FORMAT
