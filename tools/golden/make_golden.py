#!/usr/bin/env python3
"""Regenerate tests/golden/ from a checkout of an original code base (see tools/golden/README.md).

    python tools/golden/make_golden.py --original /path/to/dcase2022_task2_challenge_recipe

The original's package is also called ``asd_tools``: this script puts the checkout first on the path,
never imports this project's package, and loads the seeded inputs (tests/golden_inputs.py) by file path.
Each output file records the original's repository, commit, this command and the library versions.
"""

import argparse
import contextlib
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPE = "ibkuroyagi/dcase2022_task2_challenge_recipe"
DGMIX = "ibkuroyagi/DGMix"
# the official evaluators of the years whose result files share one layout (a CSV per submission)
EVALUATORS = {
    "y-kawagu/dcase2020_task2_evaluator": 2020,
    "y-kawagu/dcase2021_task2_evaluator": 2021,
    "Kota-Dohi/dcase2022_evaluator": 2022,
    "nttcslab/dcase2023_task2_evaluator": 2023,
    "nttcslab/dcase2024_task2_evaluator": 2024,
}
# how a checkout is recognised: a file only that code base has
CODE_BASES = {
    RECIPE: "asd_tools/models/timm_models.py",
    DGMIX: "asd_tools/models/vicreg.py",
    **{repo: f"dcase{year}_task2_evaluator.py" for repo, year in EVALUATORS.items()},
    "y-kawagu/dcase2020_task2_evaluator": "evaluator.py",
}

WAVE_SEED, WEIGHT_SEED, SAMPLES = 1, 2, 32000  # 2 s windows at 16 kHz
BATCH = 3  # >1 so that nothing batch-dependent hides; the BatchNorms run in eval mode
# the original's configs compared (ours: scripts/conf/tuning/ of the same name)
RECIPE_MODELS = ("000", "domain_classifier", "100", "200")


def load_golden_inputs():
    spec = importlib.util.spec_from_file_location("golden_inputs", ROOT / "tests" / "golden_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_original(checkout: Path):
    """Put the checkout's ``asd_tools`` first on the path and check that it is the one imported."""
    sys.path[:] = [str(checkout)] + [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != ROOT]
    import asd_tools

    if Path(asd_tools.__file__).resolve().parent != (checkout / "asd_tools").resolve():
        raise SystemExit(f"imported {asd_tools.__file__}, not {checkout}/asd_tools: unset PYTHONPATH and rerun")


def provenance(repository: str, checkout: Path) -> str:
    import numpy
    import sklearn
    import torch
    import torchaudio

    try:
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit(
            f"{checkout}: not a git checkout; clone {repository} (git clone) and pass its folder"
        ) from None
    versions = {"python": platform.python_version(), "torch": torch.__version__, "torchaudio": torchaudio.__version__}
    versions.update(numpy=numpy.__version__, sklearn=sklearn.__version__)
    with contextlib.suppress(ImportError):
        import timm

        versions["timm"] = timm.__version__
    record = {
        "repository": repository,
        "commit": commit,
        "command": "python tools/golden/make_golden.py --original <checkout of the repository>",
        "versions": versions,
    }
    return json.dumps(record, sort_keys=True)


def save(out_dir: Path, name: str, record: str, **arrays):
    """Write one golden file atomically (temp file in the same folder, then rename)."""
    import numpy as np

    path = out_dir / name
    with tempfile.NamedTemporaryFile(dir=out_dir, suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, provenance=np.array(record), **arrays)
    Path(tmp.name).chmod(0o644)
    Path(tmp.name).replace(path)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


# ------------------------------------------------------------------ recipe: System 1
def recipe_model(checkout: Path, config: str):
    """The original's model of ``asd_model.<config>.yaml``, built as its train.py builds it (no ImageNet download)."""
    import yaml

    import asd_tools.models

    with open(checkout / "scripts" / "conf" / "tuning" / f"asd_model.{config}.yaml") as f:
        cfg = yaml.safe_load(f)
    params = {**cfg["model_params"], **({"pretrained": False} if "pretrained" in cfg["model_params"] else {})}
    return getattr(asd_tools.models, cfg["model_type"])(**params)


def recipe_forward(checkout, gi, out_dir, record):
    import numpy as np
    import torch

    waves = gi.seeded_waves(WAVE_SEED, BATCH, SAMPLES)
    arrays = {"wave_seed": np.array(WAVE_SEED), "weight_seed": np.array(WEIGHT_SEED)}
    arrays["wave_digest"] = np.array(gi.digest(waves))
    for config in RECIPE_MODELS:
        model = recipe_model(checkout, config).eval()
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        seeded = {k: torch.from_numpy(v) for k, v in gi.seeded_state_dict(WEIGHT_SEED, shapes).items()}
        missing, unexpected = model.load_state_dict(seeded, strict=False)
        assert not unexpected and all(not gi.is_seeded(k) for k in missing), (missing, unexpected)
        with torch.no_grad():
            out = model(torch.from_numpy(waves))
            mel = model.melspectrogram if hasattr(model, "melspectrogram") else model.spectrogram_extractor
            arrays[f"{config}/mel"] = mel(torch.from_numpy(waves[:1]))[0].numpy()
        arrays[f"{config}/state_shapes"] = np.array(json.dumps(shapes))
        for key, value in out.items():
            arrays[f"{config}/{key}"] = value.numpy().reshape(BATCH, -1)
    save(out_dir, "recipe_forward.npz", record, **arrays)


def recipe_loss(checkout, gi, out_dir, record):
    """One batch's loss (train.py's criteria, trainer.py _train_step) with and without mixup_for_asd."""
    import numpy as np
    import torch
    import yaml

    from asd_tools.utils import mixup_for_asd

    with open(checkout / "scripts" / "conf" / "tuning" / "asd_model.000.yaml") as f:
        cfg = yaml.safe_load(f)
    batch, n_sections, seed = 8, 6, 3
    waves = torch.from_numpy(gi.seeded_array(seed, (batch, 64)))
    machine = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.float32)[:, None]
    section_index = torch.tensor([0, 3, 5, 3, 1, 2, 4, 0])
    machine_logits = torch.from_numpy(gi.seeded_array(seed + 1, (batch, 1), 2.0))
    section_logits = torch.from_numpy(gi.seeded_array(seed + 2, (batch, n_sections), 2.0))
    bce = torch.nn.BCEWithLogitsLoss(reduction="mean")
    weight = cfg["section_loss_lambda"]

    def loss(machine_target, section_target, rows):
        m, s = bce(machine_logits, machine_target), bce(section_logits[rows], section_target[rows])
        return np.array([(m + weight * s).item(), m.item(), s.item()])

    section = torch.nn.functional.one_hot(section_index, n_sections).float()
    arrays = {"waves": waves.numpy(), "machine": machine.numpy()[:, 0], "section_index": section_index.numpy()}
    arrays.update(machine_logits=machine_logits.numpy()[:, 0], section_logits=section_logits.numpy())
    arrays["section_weight"] = np.array(weight)
    arrays["plain/loss"] = loss(machine, section, machine[:, 0].bool())  # total, machine, section
    # mixup_for_asd draws lam with np.random.beta, then perm with torch.randperm: seed both, then redraw
    np.random.seed(seed), torch.manual_seed(seed)
    mixed = mixup_for_asd(waves, machine, section.clone(), mix_section=True, alpha=cfg["mixup_alpha"])
    np.random.seed(seed), torch.manual_seed(seed)
    arrays["mixup/lam"] = np.random.beta(cfg["mixup_alpha"], cfg["mixup_alpha"], batch).astype(np.float32)
    arrays["mixup/perm"] = torch.randperm(batch).numpy()
    for key, value in zip(("waves", "machine", "section", "rows"), mixed):
        arrays[f"mixup/{key}"] = value.numpy()
    arrays["mixup/loss"] = loss(mixed[1], mixed[2], mixed[3])
    save(out_dir, "recipe_loss.npz", record, **arrays)


def recipe_windows(checkout, gi, out_dir, record):
    """Test-time windows (datasets/collators.py WaveEvalCollator) of clips of several lengths."""
    import numpy as np
    import yaml

    from asd_tools.datasets import WaveEvalCollator

    with open(checkout / "scripts" / "conf" / "tuning" / "asd_model.000.yaml") as f:
        cfg = yaml.safe_load(f)
    collator = WaveEvalCollator(sf=cfg["sf"], sec=cfg["sec"], n_split=cfg["n_split"], is_dcase2022=False)
    lengths = np.array([160000, 160005, 163840, 176000, 192000, 96000, 32009])
    starts = []
    for length in lengths:  # a clip's samples are their own indices: a window's first value is its start
        items = collator([{"wave": np.arange(length, dtype=np.float64)}])
        starts.append([int(items[f"X{i}"][0, 0]) for i in range(cfg["n_split"])])
    arrays = {"lengths": lengths, "starts": np.array(starts), "window": np.array(int(cfg["sf"] * cfg["sec"]))}
    save(out_dir, "recipe_windows.npz", record, n_split=np.array(cfg["n_split"]), **arrays)


DETECT_SEED, EMBEDDING_SIZE, SECTIONS = 4, 4, 6  # infer.py loops over six sections, whatever the data
WINDOWS = 10
# clips per section: valid source / target (infer.py fits on all, or on source only: "so"), test clips;
# source-only inliers must outnumber its largest k (32)
VALID_CLIPS = {"source": 4, "target": 1}
TEST_CLIPS = 3


def detect_tables(gi):
    """The window feature tables infer.py reads (``<checkpoint>_valid.csv`` / ``_eval.csv``), seeded."""
    import numpy as np
    import pandas as pd

    features = ["pred_machine", "embed_norm"] + [f"pred_section{j}" for j in range(SECTIONS)]
    features += [f"e{i}" for i in range(EMBEDDING_SIZE)]
    rows = {"valid": [], "eval": []}
    for s in range(SECTIONS):
        for domain, clips in VALID_CLIPS.items():
            names = [f"section_{s:02d}_{domain}_train_normal_{c:04d}.wav" for c in range(clips)]
            rows["valid"] += [(name, s, 1) for name in names for _ in range(WINDOWS)]
        states = ["anomaly" if c % 2 == 0 else "normal" for c in range(TEST_CLIPS)]
        names = [f"section_{s:02d}_source_test_{state}_{c:04d}.wav" for c, state in enumerate(states)]
        rows["eval"] += [
            (name, s, int(state == "normal")) for name, state in zip(names, states) for _ in range(WINDOWS)
        ]
    tables = {}
    for i, (part, part_rows) in enumerate(rows.items()):
        df = pd.DataFrame(part_rows, columns=["path", "section", "is_normal"])
        values = gi.seeded_array(DETECT_SEED + i, (len(df), len(features))).astype(np.float64)
        values += df["section"].to_numpy()[:, None] * 0.5  # sections apart, as real embeddings are
        tables[part] = pd.concat([df, pd.DataFrame(values, columns=features)], axis=1)
    return tables, features


def run_original_infer(checkpoint_name: str, files: dict, seed: int, embedding_size: int):
    """The original code base's bin/infer.py (both recipes have one, with the same command line) on the
    score tables ``files`` (file name -> DataFrame) of a checkpoint folder ``checkpoint_name``; returns
    the ``<checkpoint>_agg.csv`` it writes."""
    import pandas as pd
    import yaml

    from asd_tools.bin import infer

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / checkpoint_name
        checkpoint.mkdir()
        for name, df in files.items():
            df.to_csv(checkpoint / name, index=False)
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({"seed": seed, "model_params": {"embedding_size": embedding_size}}))
        argv = sys.argv
        sys.argv = ["infer.py", "--config", str(config), "--checkpoints", str(checkpoint / f"{checkpoint_name}.pkl")]
        try:
            infer.main()
        finally:
            sys.argv = argv
        return pd.read_csv(checkpoint / f"{checkpoint_name}_agg.csv")


def recipe_detect(checkout, gi, out_dir, record):
    """bin/infer.py (LOF / GMM / kNN, 1-32, all / so; z-score; max / mean / median / upper_mean) on seeded tables."""
    import numpy as np


    tables, features = detect_tables(gi)
    files = {f"checkpoint-best_{part}.csv": df for part, df in tables.items()}
    agg = run_original_infer("checkpoint-best", files, seed=2022, embedding_size=EMBEDDING_SIZE)
    scores = [c for c in agg.columns if c.split("_")[0] in ("LOF", "GMM", "KNN")]
    arrays = {
        "paths": agg["path"].to_numpy().astype(str),
        "columns": np.array(scores),
        "scores": agg[scores].to_numpy(),
    }
    arrays["features"] = np.array(features)
    arrays.update({f"{part}_digest": np.array(gi.digest(df[features].to_numpy())) for part, df in tables.items()})
    save(out_dir, "recipe_detect.npz", record, seed=np.array(2022), **arrays)


# ------------------------------------------------------------------ DGMix: System 2
DGMIX_BATCH = 8  # four (x, y) pairs
DGMIX_LARS_SEED = 5


def dgmix_model(checkout: Path):
    import yaml

    import asd_tools.models

    with open(checkout / "scripts" / "conf" / "tuning" / "dgmix.original.yaml") as f:
        cfg = yaml.safe_load(f)
    return getattr(asd_tools.models, cfg["model_type"])(**cfg["model_params"]), cfg


def dgmix_forward(checkout, gi, out_dir, record):
    """models/vicreg.py VICReg with seeded weights: eval-mode embedding, section head and projector; one
    training-mode pre-training loss (VICReg, 25 / 25 / 1) and one fine-tuning loss (mixup MSE + section KL),
    its Beta(0.5, 0.5) weights recorded; the projections of the pre-training pass (a forward hook)."""
    import numpy as np
    import torch

    model, cfg = dgmix_model(checkout)
    waves = gi.seeded_waves(WAVE_SEED, DGMIX_BATCH, SAMPLES)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    seeded = {k: torch.from_numpy(v) for k, v in gi.seeded_state_dict(WEIGHT_SEED, shapes).items()}
    missing, unexpected = model.load_state_dict(seeded, strict=False)
    assert not unexpected and all(not gi.is_seeded(k) for k in missing), (missing, unexpected)
    arrays = {"wave_seed": np.array(WAVE_SEED), "weight_seed": np.array(WEIGHT_SEED)}
    arrays.update(wave_digest=np.array(gi.digest(waves)), state_shapes=np.array(json.dumps(shapes)))
    x = torch.from_numpy(waves)
    with torch.no_grad():
        model.eval()
        embedding = model(x, get_only_embed=True)["embedding"]
        arrays.update(embedding=embedding.numpy(), section=model.section_head(embedding).numpy())
        arrays["projection"] = model.projector(embedding).numpy()
        arrays["mel"] = model.melspectrogram(x[:1])[0].numpy()
        model.train()  # BatchNorm on batch statistics, as in training; the forward draws lam with np.random
        projections = []
        hook = model.projector.register_forward_hook(lambda m, i, o: projections.append(o.numpy()))
        for stage, section in (("pretrain", None), ("finetune", torch.eye(6)[[0, 1, 2, 0, 1, 2, 0, 2]])):
            state = {k: v.clone() for k, v in model.state_dict().items()}  # train mode moves BN statistics
            np.random.seed(DGMIX_LARS_SEED)
            out = model(x, section=section)
            np.random.seed(DGMIX_LARS_SEED)
            arrays[f"{stage}/lam"] = np.random.beta(0.5, 0.5, DGMIX_BATCH // 2).astype(np.float32)
            for key in ("loss", "repr_loss", "std_loss", "cov_loss", "section_loss"):
                if key in out:
                    arrays[f"{stage}/{key}"] = np.array(out[key].item())
            if section is not None:
                arrays[f"{stage}/section"] = section.numpy()
            model.load_state_dict(state)
        hook.remove()
        arrays["pretrain/projection_xy"], arrays["pretrain/projection_z"] = projections
    save(out_dir, "dgmix_forward.npz", record, **arrays)


def dgmix_lars(checkout, gi, out_dir, record):
    """optimizers/lars.py: two steps (the second uses the momentum) from seeded weights and gradients,
    with dgmix.original.yaml's settings."""
    import numpy as np
    import torch
    from asd_tools.optimizers import LARS

    _, cfg = dgmix_model(checkout)
    shapes = {"conv": (4, 3, 3, 3), "bias": (4,), "linear": (6, 5)}
    params = [
        torch.nn.Parameter(torch.from_numpy(gi.seeded_array(DGMIX_LARS_SEED + i, s)))
        for i, s in enumerate(shapes.values())
    ]
    arrays = {f"start/{name}": p.detach().numpy().copy() for name, p in zip(shapes, params)}
    optimizer = LARS(params, **cfg["optimizer_params"])
    for step in (1, 2):
        for i, (name, p) in enumerate(zip(shapes, params)):
            p.grad = torch.from_numpy(gi.seeded_array(100 * step + i, p.shape, 0.1))
            arrays[f"grad{step}/{name}"] = p.grad.numpy().copy()
        optimizer.step()
        arrays.update({f"step{step}/{name}": p.detach().numpy().copy() for name, p in zip(shapes, params)})
    arrays["optimizer_params"] = np.array(json.dumps(cfg["optimizer_params"]))
    save(out_dir, "dgmix_lars.npz", record, **arrays)


DGMIX_EMBEDDING_SIZE = 8
DGMIX_CLIPS = {"train": 6, "valid": 2, "test": 4}  # per section


def dgmix_score_table(gi):
    """The clip embedding table DGMix's infer.py reads (``<checkpoint>.csv``), seeded."""
    import numpy as np
    import pandas as pd

    rows = []
    for s in range(SECTIONS):
        for phase, clips in DGMIX_CLIPS.items():
            for c in range(clips):
                state = "anomaly" if phase == "test" and c % 2 == 0 else "normal"
                domain = "target" if c == clips - 1 else "source"
                rows.append((f"section_{s:02d}_{domain}_{phase}_{state}_{c:04d}.wav", s, phase, domain))
    df = pd.DataFrame(rows, columns=["path", "section", "phase", "domain"])
    features = [f"e{i}" for i in range(DGMIX_EMBEDDING_SIZE)]
    values = gi.seeded_array(DETECT_SEED, (len(df), len(features))).astype(np.float64)
    return pd.concat([df, pd.DataFrame(values, columns=features)], axis=1), features


def dgmix_knn(checkout, gi, out_dir, record):
    """bin/infer.py: the 1-NN distance of each test clip to the section's train + valid (all) or valid clips."""
    import numpy as np


    table, features = dgmix_score_table(gi)
    files = {"checkpoint-120epochs.csv": table}
    agg = run_original_infer("checkpoint-120epochs", files, seed=0, embedding_size=DGMIX_EMBEDDING_SIZE)
    test = agg[agg["phase"] == "test"]
    arrays = {"paths": test["path"].to_numpy().astype(str), "columns": np.array(["KNN_1_all", "KNN_1_valid"])}
    arrays["scores"] = test[["KNN_1_all", "KNN_1_valid"]].to_numpy()
    arrays["table_digest"] = np.array(gi.digest(table[features].to_numpy()))
    save(out_dir, "dgmix_knn.npz", record, **arrays)


# ------------------------------------------------------------------ the official evaluators, 2020-2024
# machine types of each year's evaluation set (2023 and 2024 name result columns after them)
EVALUATOR_MACHINES = {
    2020: ("fan", "valve"),
    2021: ("fan", "valve"),
    2022: ("fan", "valve"),
    2023: ("ToyDrone", "bandsaw"),
}
EVALUATOR_MACHINES[2024] = ("3DPrinter", "HairDryer")
EVALUATOR_SECTIONS = {2020: (1, 3), 2021: (3, 4), 2022: (3, 4, 5), 2023: (0,), 2024: (0,)}
EVALUATOR_CLIPS = 6  # per section, domain and state (normal / anomaly)


def evaluator_inputs(gi, year):
    """Seeded ground truth (one row per clip: machine, section, name, anomaly 0/1, target 0/1) and systems
    (name -> scores in the same row order): random, heavily tied, one all-equal section (the first machine
    type's last section), informative."""
    import numpy as np
    import pandas as pd

    rows = []
    for machine in EVALUATOR_MACHINES[year]:
        for section in EVALUATOR_SECTIONS[year]:
            labels = [(a, t) for t in (0, 1) for a in (0, 1) for _ in range(EVALUATOR_CLIPS)]
            order = np.random.default_rng([section, len(machine)]).permutation(len(labels))  # names hide the labels
            for i, k in enumerate(order):
                rows.append((machine, section, f"section_{section:02d}_{i:04d}.wav", *labels[k]))
    truth = pd.DataFrame(rows, columns=["machine", "section", "name", "anomaly", "target"])
    noise = gi.seeded_array(DETECT_SEED, len(truth)).astype(np.float64)
    constant = (truth["machine"] == EVALUATOR_MACHINES[year][0]) & (truth["section"] == EVALUATOR_SECTIONS[year][-1])
    systems = {
        "random": noise,
        "ties": np.round(noise * 2) / 2,
        "constant_section": np.where(constant, 0.5, noise),
        "informative": truth["anomaly"].to_numpy() + 0.8 * noise,
    }
    return truth, systems


def write_lines(path, pairs):
    Path(path).write_text("".join(f"{a},{b}\n" for a, b in pairs))


def write_evaluator_inputs_2020(truth, systems):
    """The 2020 evaluator's inputs: eval_data_list.csv (a machine type's name on its own line, then its clips:
    name, name, label; sorted by name, the order the evaluator pairs with the sorted scores) and one
    submission file per machine ID (the section here), with no domains."""
    named = truth.assign(
        name=[f"id_{s:02d}_{n[len('section_00_') :]}" for s, n in zip(truth["section"], truth["name"])]
    )
    lines = []
    for machine, rows in named.groupby("machine"):
        lines.append(machine)
        lines += [f"{n},{n},{a}" for n, a in sorted(zip(rows["name"], rows["anomaly"]))]
    Path("eval_data_list.csv").write_text("\n".join(lines) + "\n")
    for name, scores in systems.items():
        team = Path("teams") / name
        team.mkdir(parents=True)
        for (machine, section), rows in named.assign(score=scores).groupby(["machine", "section"]):
            write_lines(
                team / f"anomaly_score_{machine}_id_{section:02d}.csv", zip(rows["name"], map(repr, rows["score"]))
            )


def write_evaluator_inputs_2021(truth, systems):
    """The 2021 evaluator's folders: one ground-truth and one submission file per section and domain."""
    Path("ground_truth_data").mkdir()
    split = truth.assign(domain=truth["target"].map({0: "source", 1: "target"}))
    for (machine, section, domain), rows in split.groupby(["machine", "section", "domain"]):
        write_lines(
            f"ground_truth_data/ground_truth_{machine}_section_{section:02d}_{domain}_test.csv",
            zip(rows["name"], rows["anomaly"]),
        )
    for name, scores in systems.items():
        team = Path("teams") / "team" / name
        team.mkdir(parents=True)
        for (machine, section, domain), rows in split.assign(score=scores).groupby(["machine", "section", "domain"]):
            decisions = (rows["score"] > rows["score"].median()).astype(int)
            for prefix, values in (("anomaly_score", rows["score"]), ("decision_result", decisions)):
                write_lines(
                    team / f"{prefix}_{machine}_section_{section:02d}_{domain}_test.csv",
                    zip(rows["name"], map(repr, values)),
                )


def write_evaluator_inputs(truth, systems):
    """The evaluator's folders, in the current directory: ground truth (labels, domains, attributes: each
    clip's full name, which a submission may use instead) and one submission folder per system."""
    for kind, column in (("data", "anomaly"), ("domain", "target"), ("attributes", None)):
        Path(f"ground_truth_{kind}").mkdir()
        for (machine, section), rows in truth.groupby(["machine", "section"]):
            path = f"ground_truth_{kind}/ground_truth_{machine}_section_{section:02d}_test.csv"
            if column:
                write_lines(path, zip(rows["name"], rows[column]))
            else:
                write_lines(path, [(n, n[: -len(".wav")] + "_full_name") for n in rows["name"]])
    for name, scores in systems.items():
        team = Path("teams") / "team" / name
        team.mkdir(parents=True)
        for (machine, section), rows in truth.assign(score=scores).groupby(["machine", "section"]):
            decisions = (rows["score"] > rows["score"].median()).astype(int)
            for prefix, values in (("anomaly_score", rows["score"]), ("decision_result", decisions)):
                write_lines(
                    team / f"{prefix}_{machine}_section_{section:02d}_test.csv", zip(rows["name"], map(repr, values))
                )


def run_evaluator_2020(evaluator, truth, systems):
    import csv

    import numpy as np

    write_evaluator_inputs_2020(truth, systems)
    with open("eval_data_list.csv") as f:
        evaluator.eval_data_list = list(csv.reader(f))  # its __main__ reads this global
    results = {}
    for name in systems:
        evaluator.output_result(str(Path("teams") / name), list(EVALUATOR_MACHINES[2020]))
        results[f"result/{name}"] = np.array(Path(f"teams/result_{name}.csv").read_text())
    return results


def run_evaluator(evaluator, year, truth, systems):
    import numpy as np

    (write_evaluator_inputs_2021 if year == 2021 else write_evaluator_inputs)(truth, systems)
    machines = evaluator.get_machines(load_dir="ground_truth_data")
    section_ids = evaluator.get_section_ids(target_dir="ground_truth_data")
    results = {}
    for name in systems:
        team = str(Path("teams") / "team" / name)
        if year in (2021, 2022):
            status = evaluator.output_result(team, machines, section_ids)
        else:
            status = evaluator.output_result(team, machines, section_ids, "teams_result", "extra", 0, "")[0]
        assert status == 0, f"the evaluator stopped on {name}"
        results[f"result/{name}"] = np.array(Path(f"teams_result/{name}_result.csv").read_text())
    return results


def evaluator_results(checkout, gi, out_dir, record):
    """The evaluator's ``output_result`` on seeded ground truth and submissions: its result CSV per system."""
    import os

    import numpy as np

    year = EVALUATORS[json.loads(record)["repository"]]
    sys.path.insert(0, str(checkout))  # 2023 and 2024 import their tools/ package
    spec = importlib.util.spec_from_file_location("evaluator", checkout / CODE_BASES[json.loads(record)["repository"]])
    evaluator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluator)
    truth, systems = evaluator_inputs(gi, year)
    arrays = {"truth_digest": np.array(gi.digest(truth[["anomaly", "target"]].to_numpy()))}
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the evaluator reads and writes folders relative to where it runs
        try:
            if year == 2020:
                arrays.update(run_evaluator_2020(evaluator, truth, systems))
            else:
                arrays.update(run_evaluator(evaluator, year, truth, systems))
        finally:
            os.chdir(cwd)
    save(out_dir, f"evaluator_{year}.npz", record, year=np.array(year), **arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path, required=True, help="a git checkout of an original code base")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "golden", help="where the golden files go")
    args = parser.parse_args()
    checkout = args.original.resolve()
    found = [repo for repo, marker in CODE_BASES.items() if (checkout / marker).is_file()]
    if not found:
        raise SystemExit(f"{checkout}: not a checkout of any of {sorted(CODE_BASES)} (none of their files found)")
    args.out.mkdir(parents=True, exist_ok=True)
    gi = load_golden_inputs()
    if (checkout / "asd_tools").is_dir():
        import_original(checkout)
    record = provenance(found[0], checkout)
    import torch

    torch.set_num_threads(1)  # one thread: the reductions' order is then that of a 1-thread CI
    makers = {RECIPE: (recipe_windows, recipe_loss, recipe_detect, recipe_forward)}
    makers[DGMIX] = (dgmix_lars, dgmix_knn, dgmix_forward)
    makers.update({repo: (evaluator_results,) for repo in EVALUATORS})
    for make in makers[found[0]]:
        make(checkout, gi, args.out, record)


if __name__ == "__main__":
    main()
