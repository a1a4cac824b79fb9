import pytest

from asd_tools.data.names import BadClipName, parse_clip_path
from asd_tools.datasets.registry import dataset_spec

DCASE2022 = dataset_spec("dcase2022")


@pytest.mark.parametrize(
    "path, expected",
    [
        (
            "dev/ToyCar/train/section_00_source_train_normal_0009_car_A1_spd_28V_mic_1_noise_1.wav",
            dict(
                machine="ToyCar",
                dataset="dev",
                split="train",
                section=0,
                domain="source",
                state="normal",
                index=9,
                attributes="car_A1_spd_28V_mic_1_noise_1",
            ),
        ),
        (
            "dev/gearbox/test/section_00_source_test_anomaly_0007_volt_2.5.wav",
            dict(
                machine="gearbox",
                dataset="dev",
                split="test",
                section=0,
                domain="source",
                state="anomaly",
                index=7,
                attributes="volt_2.5",
            ),
        ),
        (
            "eval/fan/test/section_03_0123.wav",
            dict(
                machine="fan",
                dataset="eval",
                split="test",
                section=3,
                domain="unknown",
                state="unknown",
                index=123,
                attributes="",
            ),
        ),
        (
            "eval/valve/train/section_04_target_train_normal_0002_pat_04_panel_bs-c.wav",
            dict(
                machine="valve",
                dataset="eval",
                split="train",
                section=4,
                domain="target",
                state="normal",
                index=2,
                attributes="pat_04_panel_bs-c",
            ),
        ),
        (
            "dev/fan/train/section_01_source_train_normal_0000_m-n_X.wav",
            dict(machine="fan", section=1, attributes="m-n_X"),
        ),
        (
            "dev/slider/train/section_02_target_train_normal_0005_vel_8_loc_H.wav",
            dict(machine="slider", section=2, domain="target", attributes="vel_8_loc_H"),
        ),
        ("dev/bearing/train/section_00_source_train_normal_0001.wav", dict(attributes="", index=1)),
    ],
)
def test_real_name_forms(path, expected):
    info = parse_clip_path(path, DCASE2022)
    for key, value in expected.items():
        assert getattr(info, key) == value, key
    assert info.clip_id.startswith(f"{info.machine}/{info.dataset}/{info.split}/section_")


@pytest.mark.parametrize(
    "path",
    [
        "dev/fan/train/section_0_source_train_normal_0009.wav",  # one-digit section
        "dev/fan/train/section_00_source_train_normal_009.wav",  # three-digit index
        "dev/fan/train/section_00_middle_train_normal_0009.wav",  # bad domain
        "dev/fan/train/section_00_source_train_broken_0009.wav",  # bad state
        "dev/fan/train/section_00_source_test_normal_0009.wav",  # split disagrees with folder
        "dev/fan/train/section_03_0123.wav",  # unlabelled name outside test/
        "dev/fan/test/section_06_0123.wav",  # no such section
        "dev/drill/train/section_00_source_train_normal_0009.wav",  # not a machine type
        "dev/fan/valid/section_00_source_train_normal_0009.wav",  # not a split folder
        "dev/fan/train/section_00_source_train_normal_0009.flac",
    ],
)
def test_bad_names_are_errors_naming_the_file(path):
    with pytest.raises(BadClipName) as err:
        parse_clip_path(path, DCASE2022)
    assert path.split("/")[-1] in str(err.value) or path.split("/")[1] in str(err.value)


@pytest.mark.parametrize(
    "path",
    [
        "dev/fan/train/section_00_source_train_normal_0009_a_1.WAV",
        "dev/fan/train/section_00_source_train_normal_0009_a_1.Wav",
        "eval/fan/test/section_03_0123.WAV",
    ],
)
def test_the_wav_suffix_may_be_upper_case(path):
    info = parse_clip_path(path, DCASE2022)
    name = path.split("/")[-1]
    assert info.file_name == name  # exact: the evaluator pairs rows with its ground truth by name
    assert info.clip_id == f"{info.machine}/{info.dataset}/{info.split}/{name[:-4]}"
