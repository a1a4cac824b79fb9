"""The corpus object: manifest and lists of a dump folder, read once."""

import pytest

from asd_tools.data.corpus import Corpus
from asd_tools.data.manifest import load_manifest
from asd_tools.data.split import lists_identity, read_list
from tests.conftest import TINY_MACHINES


def test_clips_follow_the_lists_in_order(tiny_dump):
    corpus = Corpus(tiny_dump)
    train, valid = read_list(tiny_dump, "fan", "train"), read_list(tiny_dump, "fan", "valid")
    clips = corpus.clips("fan", ["train", "valid"])
    assert clips["clip_id"].tolist() == train + valid
    assert corpus.clips("fan", "valid")["clip_id"].tolist() == valid
    expected = load_manifest(tiny_dump, ["fan"]).loc[train + valid]
    assert clips.equals(expected)


def test_manifest_of_several_machine_types_and_counts(tiny_dump):
    corpus = Corpus(tiny_dump)
    both = corpus.manifest(TINY_MACHINES)
    assert both.equals(load_manifest(tiny_dump, list(TINY_MACHINES)))
    assert corpus.sections("fan") == (0, 1, 2, 3, 4, 5)  # dev 00-02 and eval 03-05 in the tiny set
    assert corpus.domains("fan") == ("source", "target")
    assert corpus.lists_identity("fan", "test") == lists_identity(tiny_dump, "fan", ["test"])


def test_each_file_is_read_once(tiny_dump, monkeypatch):
    import asd_tools.data.corpus as corpus_module

    calls = []
    original = corpus_module.read_list
    monkeypatch.setattr(corpus_module, "read_list", lambda *a: calls.append(a) or original(*a))
    corpus = Corpus(tiny_dump)
    corpus.clips("fan", "train")
    corpus.clips("fan", ["train", "valid"])
    assert [c[2] for c in calls] == ["train", "valid"]
    assert corpus.manifest("fan") is corpus.manifest("fan")


def test_a_missing_list_says_which_stage_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="stage 1"):
        Corpus(tmp_path).clips("fan", "train")
