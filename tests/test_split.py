import pandas as pd
import pytest

from asd_tools.data.split import read_list, split_training_clips, valid_folds, write_lists


def _training_clips(n_source=40, n_target=9, sections=(0, 1, 2, 3, 4, 5)):
    rows = []
    for s in sections:
        rows += [dict(machine="fan", section=s, domain="source", index=i) for i in range(n_source)]
        rows += [dict(machine="fan", section=s, domain="target", index=i) for i in range(n_target)]
    return pd.DataFrame(rows)


def test_source_split_is_stratified_and_target_rule_holds():
    df = _training_clips()
    subset = split_training_clips(df, valid_ratio=0.2, seed=0)
    source = df[df.domain == "source"].assign(subset=subset)
    per_section = source[source.subset == "valid"].groupby("section").size()
    assert set(per_section) == {8}  # 40 clips / 5 folds in every section
    target = df[df.domain == "target"].assign(subset=subset)
    assert (target.loc[target.subset == "valid", "index"] % 3 == 0).all()
    assert (target.loc[target.subset == "train", "index"] % 3 != 0).all()


def test_split_is_deterministic_and_seed_dependent():
    df = _training_clips()
    a = split_training_clips(df, 0.15, seed=0)
    assert a.equals(split_training_clips(df, 0.15, seed=0))
    assert not a.equals(split_training_clips(df, 0.15, seed=1))


def test_fold_rules_follow_the_original_int_or_round():
    assert valid_folds(0.15) == 6  # the original: int(1 / 0.15) = int(6.67)
    assert valid_folds(0.15, "round") == 7
    assert valid_folds(0.1) == valid_folds(0.1, "round") == 10
    assert valid_folds(0.3) == 3 and valid_folds(0.3, "round") == 3
    assert valid_folds(0.4) == 2 and valid_folds(0.4, "round") == 2
    with pytest.raises(ValueError, match="needs 2"):
        valid_folds(0.6)  # int(1.67) = 1 fold
    assert valid_folds(0.6, "round") == 2
    with pytest.raises(ValueError, match="fold rule"):
        valid_folds(0.15, "floor")


@pytest.mark.parametrize("rule, folds", [("int", 6), ("round", 7)])
def test_validation_share_for_valid_ratio_015(rule, folds):
    df = _training_clips(n_source=42, n_target=0)  # 42 clips per section: 7 in valid with 6 folds, 6 with 7
    subset = split_training_clips(df, 0.15, seed=0, fold_rule=rule)
    assert set(df[subset == "valid"].groupby("section").size()) == {42 // folds}
    assert (subset == "valid").mean() == pytest.approx(1 / folds)  # 16.7 % (original) or 14.3 %


def test_the_original_rule_is_the_default():
    df = _training_clips(n_source=42, n_target=0)
    assert split_training_clips(df, 0.15, seed=0).equals(split_training_clips(df, 0.15, seed=0, fold_rule="int"))


def test_too_few_clips_for_the_folds_is_a_clear_error():
    with pytest.raises(ValueError, match="valid_ratio"):
        split_training_clips(_training_clips(n_source=3), 0.15, seed=0)


def test_lists_cover_every_clip_once(tiny_root, tmp_path):
    from asd_tools.data.dump import dump_machine
    from asd_tools.data.manifest import load_manifest

    dump_machine(tiny_root, "valve", tmp_path)
    write_lists(tmp_path, "valve", valid_ratio=0.15, seed=0)
    train, valid, test = (read_list(tmp_path, "valve", s) for s in ("train", "valid", "test"))
    manifest = load_manifest(tmp_path, ["valve"])
    assert not set(train) & set(valid)
    assert sorted(train + valid) == sorted(manifest[manifest.split == "train"].clip_id)
    assert sorted(test) == sorted(manifest[manifest.split == "test"].clip_id)


def test_changing_the_fold_rule_rewrites_the_lists(tiny_root, tmp_path):
    from asd_tools.data.dump import dump_machine
    from asd_tools.provenance import read_record

    dump_machine(tiny_root, "valve", tmp_path)
    write_lists(tmp_path, "valve", valid_ratio=0.15, seed=0)
    record = read_record(tmp_path / "valve" / "lists", "lists")
    assert record["settings"]["fold_rule"] == "int"
    write_lists(tmp_path, "valve", valid_ratio=0.15, seed=0, fold_rule="round")
    assert read_record(tmp_path / "valve" / "lists", "lists")["settings"]["fold_rule"] == "round"
