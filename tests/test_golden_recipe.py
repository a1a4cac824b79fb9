"""System 1 against the original recipe's own outputs (tests/golden/recipe_*.npz, tools/golden/make_golden.py).

The golden files hold what ibkuroyagi/dcase2022_task2_challenge_recipe computed on seeded inputs and
seeded weights (tests/golden_inputs.py); each test feeds the same inputs to this project's code.
Tolerances are for fp32 on CPU: 1e-5 relative unless a comment says why more.
"""

import json

import numpy as np
import pytest
import torch

from asd_tools.backend.detectors import build_detector, pool_windows
from asd_tools.config import load_config
from asd_tools.constants import WINDOW_SAMPLES
from asd_tools.data.windows import window_starts
from asd_tools.models.frontend import MelFrontend
from asd_tools.models.original_weights import from_original_state_dict
from asd_tools.systems.serial_oe.config import SerialOEConfig
from asd_tools.systems.serial_oe.recipe import make_model
from asd_tools.systems.serial_oe.task import mix
from asd_tools.training.losses import outlier_exposure_loss
from tests.golden_inputs import digest, load_golden, seeded_state_dict, seeded_waves
from tests.test_training import CONF

RECIPE = "ibkuroyagi/dcase2022_task2_challenge_recipe"


pytestmark = pytest.mark.usefixtures("one_thread")  # as make_golden.py ran (tests/conftest.py)


@pytest.fixture(scope="module")
def forward():
    golden = load_golden("recipe_forward.npz")
    assert golden["provenance"]["repository"] == RECIPE
    return golden


def golden_waves(golden):
    waves = seeded_waves(int(golden["wave_seed"]), 3, WINDOW_SAMPLES)
    assert digest(waves) == str(golden["wave_digest"]), "tests/golden_inputs.py changed: regenerate tests/golden"
    return torch.from_numpy(waves)


def model_with_original_weights(config, golden):
    """Our model of scripts/conf/tuning/asd_model.<config>.yaml carrying the original's seeded weights."""
    cfg = load_config(CONF / f"asd_model.{config}.yaml", SerialOEConfig)
    cfg.model.params["pretrained"] = False if "pretrained" in cfg.model.params else None
    cfg.model.params = {k: v for k, v in cfg.model.params.items() if v is not None}
    model = make_model(cfg, sections=list(range(6))).eval()  # the original's six-section head
    shapes = json.loads(str(golden[f"{config}/state_shapes"]))
    original = {k: torch.from_numpy(v) for k, v in seeded_state_dict(int(golden["weight_seed"]), shapes).items()}
    model.load_state_dict(from_original_state_dict(original, model), strict=True)
    return model


# CNN 000-003 share one model (asd_model.000: EfficientNet-B0, option-F neck, attribute/section heads;
# 001-003 differ only in training); the domain classifier adds the domain head. 100: Transformer, 200: Conformer.
@pytest.mark.parametrize("config", ["000", "domain_classifier", "100", "200"])
def test_model_forward_equals_the_original(forward, config):
    model = model_with_original_weights(config, forward)
    with torch.no_grad():
        out = model(golden_waves(forward))
    for key in ("embedding", "machine", "section", "domain"):
        if f"{config}/{key}" not in forward:
            assert key not in out or config != "domain_classifier"
            continue
        ours, theirs = out[key].numpy().reshape(3, -1), forward[f"{config}/{key}"]
        scale = np.abs(theirs).max()
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * scale, err_msg=f"{config} {key}")


@pytest.mark.parametrize("config", ["000", "100"])
def test_mel_front_end_equals_the_original(forward, config):
    frontend = MelFrontend(load_config(CONF / f"asd_model.{config}.yaml", SerialOEConfig).frontend).eval()
    with torch.no_grad():
        ours = frontend(golden_waves(forward)[:1])[0].numpy()
    theirs = forward[f"{config}/mel"]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6 * np.abs(theirs).max())


def test_mapping_names_a_key_it_does_not_know(forward):
    model = model_with_original_weights("000", forward)
    with pytest.raises(KeyError, match="attention.weight"):
        from_original_state_dict({"attention.weight": torch.zeros(1)}, model)


# ------------------------------------------------------------------ loss of one batch
@pytest.fixture(scope="module")
def loss_golden():
    return load_golden("recipe_loss.npz")


def _loss(golden, machine, section):
    total, machine_term, section_term = outlier_exposure_loss(
        torch.from_numpy(golden["machine_logits"]),
        torch.from_numpy(golden["section_logits"]),
        machine,
        section,
        float(golden["section_weight"]),
    )
    return np.array([total.item(), machine_term.item(), section_term.item()])


def _targets(golden):
    machine = torch.from_numpy(golden["machine"])
    section = torch.nn.functional.one_hot(torch.from_numpy(golden["section_index"]), 6).float() * machine[:, None]
    return machine, section


def test_loss_of_one_batch_equals_the_original(loss_golden):
    machine, section = _targets(loss_golden)
    np.testing.assert_allclose(_loss(loss_golden, machine, section), loss_golden["plain/loss"], rtol=1e-6)


def test_mixup_loss_with_fixed_lambda_and_permutation_equals_the_original(loss_golden):
    g = loss_golden
    machine, section = _targets(g)
    lam, perm = torch.from_numpy(g["mixup/lam"]), torch.from_numpy(g["mixup/perm"])
    waves, (machine, section) = mix(torch.from_numpy(g["waves"]), [machine, section], lam, perm)
    np.testing.assert_allclose(waves.numpy(), g["mixup/waves"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(machine.numpy(), g["mixup/machine"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(section.numpy(), g["mixup/section"], rtol=1e-6, atol=1e-7)
    # the section term's rows: the original's mixed machine label > 0; ours: a target with mass
    np.testing.assert_array_equal((section.sum(dim=1) > 0).numpy(), g["mixup/rows"])
    np.testing.assert_allclose(_loss(g, machine, section), g["mixup/loss"], rtol=1e-6)


# ------------------------------------------------------------------ test-time windows
def test_window_starts_differ_from_the_original_by_less_than_n_split_samples():
    """Pinned deviation (docs/fidelity.md): the original's windows start at i * floor((L - W) / (n - 1)),
    the last at L - W; ours at round(i * (L - W) / (n - 1)). The first and last windows agree; window i
    starts less than i samples earlier there (10 s clips: at most 2 samples, 1/8 ms). A clip shorter than
    W + n - 1 samples broke the original (its windows ran past the end); ours pads, so it is left out."""
    g = load_golden("recipe_windows.npz")
    window, n_split = int(g["window"]), int(g["n_split"])
    for length, theirs in zip(g["lengths"], g["starts"]):
        if length < window + n_split - 1:
            continue
        ours = window_starts(int(length), window, n_split)
        assert ours[0] == theirs[0] and ours[-1] == theirs[-1], length
        assert np.all(ours - theirs < np.arange(n_split) + 1), (length, ours - theirs)
        assert np.all(ours >= theirs), length  # round(x) >= floor(x)
    assert any((window_starts(int(n), window, n_split) != s).any() for n, s in zip(g["lengths"], g["starts"]))


# ------------------------------------------------------------------ detectors, z-scores, pooling
def _detect_tables(g):
    """The seeded feature tables the original's infer.py read (rebuilt by make_golden's own rule)."""
    import importlib.util

    from tests.golden_inputs import GOLDEN_DIR

    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR.parents[1] / "tools/golden/make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    import tests.golden_inputs as gi

    tables, features = make_golden.detect_tables(gi)
    assert list(features) == list(g["features"])
    for part, df in tables.items():
        assert digest(df[features].to_numpy()) == str(g[f"{part}_digest"]), "the seeded tables changed"
    return tables, features


def _zscore(x):
    return (x - x.mean()) / x.std()


# GMM fits take seconds each (up to 32 components, 100 EM steps): one of the six sections keeps the test short
GMM_SECTIONS = (3,)
ORIGINAL_POOLING = {"max": "min_anomaly", "mean": "mean", "median": "median", "upper_mean": "lower_mean_anomaly"}


def test_detector_scores_pooled_per_clip_equal_the_original():
    """LOF / GMM / kNN with k in 1-32 on all or source-only inliers, per section, window scores z-scored over
    the section's test windows (the original's step; ours z-scores by references, an increasing affine map
    that leaves every AUC as it is) and pooled by each of the original's four poolings."""
    g = load_golden("recipe_detect.npz")
    tables, features = _detect_tables(g)
    valid, test = tables["valid"], tables["eval"]
    paths = list(g["paths"])
    columns = list(g["columns"])
    ours = np.full(g["scores"].shape, np.nan)
    for section in sorted(test["section"].unique()):
        rows = test[test["section"] == section]
        clip_codes, clip_paths = np.unique(rows["path"].to_numpy(), return_inverse=True)[::-1]
        for used in ("all", "so"):
            inliers = valid[(valid["section"] == section) & ((used == "all") | ~valid["path"].str.contains("target"))]
            for name in ("lof", "gmm", "knn") if section in GMM_SECTIONS else ("lof", "knn"):
                for k in (1, 2, 4, 8, 16, 32):
                    detector = build_detector(name, {"k": k}, seed=int(g["seed"]))
                    anomaly = detector.fit(inliers[features].to_numpy()).score(rows[features].to_numpy())
                    window_z = -_zscore(-anomaly)  # the original z-scores its normality score
                    for theirs, pooling in ORIGINAL_POOLING.items():
                        pooled = pool_windows(window_z, clip_codes, len(clip_paths), pooling)
                        column = columns.index(f"{name.upper()}_{k}_{used}_{theirs}")
                        for clip, value in zip(clip_paths, pooled):
                            ours[paths.index(clip), column] = -value  # back to the original's orientation
    compared = ~np.isnan(ours)
    assert compared.all(axis=0).sum() == len(columns) - len(ORIGINAL_POOLING) * 12  # only GMM columns are partial
    assert compared.sum(axis=0).min() > 0
    # float64 throughout, the same sklearn estimators on the same rows (GMM: k-means init, random_state
    # 2022): measured equal to 4e-15
    for j, column in enumerate(columns):
        rows = compared[:, j]
        np.testing.assert_allclose(ours[rows, j], g["scores"][rows, j], rtol=0, atol=1e-9, err_msg=column)
