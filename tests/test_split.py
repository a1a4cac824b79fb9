import pandas as pd
import pytest

from asd_tools.data.split import read_list, split_training_clips, write_lists


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
