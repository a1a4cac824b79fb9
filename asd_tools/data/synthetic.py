"""Write the built-in synthetic data set in exactly the DCASE 2022 layout.

``<root>/{dev,eval}/<machine>/{train,test}/*.wav`` with the real naming rules, shuffled
unlabelled evaluation test names, ``attributes_SS.csv`` files, and the evaluator's
ground-truth CSVs under ``<root>/ground_truth/``. Every clip is seeded from its own
identity, so the set is identical whatever the order or parallelism of generation.
"""

import json
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asd_tools.constants import DOMAINS, MACHINE_TYPES, SAMPLE_RATE, SECTIONS, dataset_of_section
from asd_tools.data.synth_sounds import MACHINE_MODELS, OUTLIER_SOUNDS, at_rms, background, outlier_sound
from asd_tools.utils import atomic_path

DONE_FILE = ".synthetic_done.json"
OUTPUT_RMS = 0.05  # about -26 dBFS: headroom for transients before 16-bit clipping


@dataclass(frozen=True)
class SyntheticSize:
    """Clip counts per section (training: source + target; test: per domain and state)."""

    clip_seconds: float
    train_source: int
    train_target: int
    test_per_domain_state: int


SIZES = {
    "tiny": SyntheticSize(clip_seconds=3.0, train_source=8, train_target=2, test_per_domain_state=2),
    "small": SyntheticSize(clip_seconds=10.0, train_source=60, train_target=6, test_per_domain_state=10),
    "full": SyntheticSize(clip_seconds=10.0, train_source=990, train_target=10, test_per_domain_state=50),
}


@dataclass(frozen=True)
class ClipSpec:
    machine: str
    section: int
    split: str
    domain: str
    state: str
    index: int


def clip_rng(seed, spec: ClipSpec):
    """A generator seeded by the clip's identity alone."""
    codes = [
        seed,
        MACHINE_TYPES.index(spec.machine),
        spec.section,
        ("train", "test").index(spec.split),
        DOMAINS.index(spec.domain),
        ("normal", "anomaly").index(spec.state),
        spec.index,
    ]
    return np.random.default_rng(np.random.SeedSequence(codes))


def render_clip(spec: ClipSpec, size: SyntheticSize, seed: int, anomaly_scale: float):
    """Return (int16 samples, attribute suffix, anomaly kind or '') for one clip."""
    rng = clip_rng(seed, spec)
    n = int(size.clip_seconds * SAMPLE_RATE)
    model = MACHINE_MODELS[spec.machine]()
    op = model.operating_point(spec.section, spec.domain, rng)
    anomaly = None
    if spec.state == "anomaly":
        kind = model.anomaly_kinds[int(rng.integers(len(model.anomaly_kinds)))]
        # Levels spread from barely audible to clear: many anomalies are subtle.
        anomaly = (kind, anomaly_scale * rng.uniform(0.15, 1.0))
    machine = model.render(op, rng, n, anomaly)
    snr_db = 4.0 - 1.5 * (spec.section % 3) + rng.uniform(-3.0, 3.0) - (3.0 if spec.domain == "target" else 0.0)
    noise = background(rng, n, spec.domain, spec.section)
    mix = at_rms(machine, 1.0) + at_rms(noise, 10 ** (-snr_db / 20))
    mix = at_rms(mix, OUTPUT_RMS * rng.uniform(0.8, 1.25))
    pcm = np.clip(np.round(mix * 32768), -32768, 32767).astype(np.int16)
    return pcm, op.attributes, anomaly[0] if anomaly else ""


def section_specs(machine, section, size: SyntheticSize):
    """All clips of one section, in the real counts' proportions."""
    specs = []
    for domain, count in (("source", size.train_source), ("target", size.train_target)):
        specs += [ClipSpec(machine, section, "train", domain, "normal", i) for i in range(count)]
    for domain in DOMAINS:
        for state in ("normal", "anomaly"):
            specs += [ClipSpec(machine, section, "test", domain, state, i) for i in range(size.test_per_domain_state)]
    return specs


def labelled_name(spec: ClipSpec, attributes: str) -> str:
    suffix = f"_{attributes}" if attributes else ""
    return f"section_{spec.section:02d}_{spec.domain}_{spec.split}_{spec.state}_{spec.index:04d}{suffix}.wav"


def write_machine(root: Path, dataset: str, machine: str, size: SyntheticSize, seed: int, anomaly_scale: float):
    """Write one (dataset, machine) folder via a temporary folder, and its ground truth rows."""
    final = root / dataset / machine
    tmp = root / dataset / f".{machine}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # only ever our own unfinished temporary folder
    for split in ("train", "test"):
        (tmp / split).mkdir(parents=True)
    shuffle = np.random.default_rng([seed, MACHINE_TYPES.index(machine), 99])
    truth = {}
    attribute_rows = {}
    for section in (s for s in SECTIONS if dataset_of_section(s) == dataset):
        specs = section_specs(machine, section, size)
        test_specs = [s for s in specs if s.split == "test"]
        eval_names = {}
        if dataset == "eval":  # unlabelled, shuffled names section_SS_NNNN.wav
            order = shuffle.permutation(len(test_specs))
            eval_names = {spec: f"section_{section:02d}_{int(i):04d}.wav" for spec, i in zip(test_specs, order)}
        for spec in specs:
            pcm, attributes, _kind = render_clip(spec, size, seed, anomaly_scale)
            name = eval_names.get(spec) or labelled_name(spec, attributes)
            sf.write(tmp / spec.split / name, pcm, SAMPLE_RATE, subtype="PCM_16")
            attribute_rows.setdefault(section, []).append(
                f"{machine}/{spec.split}/{name}," + attributes_csv(attributes)
            )
            if spec in eval_names:
                truth.setdefault(section, []).append((name, int(spec.state == "anomaly"), int(spec.domain == "target")))
    for section, rows in attribute_rows.items():
        header = "file_name,d1p,d1v,d2p,d2v,d3p,d3v,d4p,d4v\n"
        (tmp / f"attributes_{section:02d}.csv").write_text(header + "\n".join(rows) + "\n")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return machine, dataset, truth


def attributes_csv(attributes: str) -> str:
    """``car_A1_spd_28V`` -> ``car,A1,spd,28V`` (ragged rows, as in the real files)."""
    return ",".join(attributes.split("_")) if attributes else ""


def write_ground_truth(root: Path, machine: str, truth: dict) -> None:
    """The evaluator's files: ground_truth_data (1 = anomaly) and ground_truth_domain (1 = target)."""
    for section, rows in truth.items():
        for folder, column in (("ground_truth_data", 1), ("ground_truth_domain", 2)):
            path = root / "ground_truth" / folder / f"ground_truth_{machine}_section_{section:02d}_test.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{row[0]},{row[column]}\n" for row in sorted(rows)))


def generate(root, size_name="small", machines=MACHINE_TYPES, seed=0, anomaly_scale=1.0, jobs=2, force=False):
    """Generate the data set under ``root``; a finished identical set is left as it is."""
    root = Path(root)
    if size_name not in SIZES:
        raise ValueError(f"unknown synthetic size '{size_name}': choose one of {sorted(SIZES)}")
    unknown = sorted(set(machines) - set(MACHINE_TYPES))
    if unknown:
        raise ValueError(f"unknown machine types {unknown}: choose from {MACHINE_TYPES}")
    settings = {
        "size": size_name,
        "machines": sorted(machines),
        "seed": seed,
        "anomaly_scale": anomaly_scale,
        **asdict(SIZES[size_name]),
    }
    done = root / DONE_FILE
    present = []
    if done.exists() and not force:
        previous = json.loads(done.read_text())
        if {k: v for k, v in previous.items() if k != "machines"} != {
            k: v for k, v in settings.items() if k != "machines"
        }:
            raise FileExistsError(
                f"{root} holds a synthetic set made with other settings ({previous}); "
                "pass --force to regenerate it or choose another --root"
            )
        present = previous["machines"]  # same settings: only missing machine types are generated
    missing = [m for m in machines if m not in present]
    if not missing:
        logging.info(f"{root}: synthetic data already complete ({size_name}); skipping")
        return settings
    size = SIZES[size_name]
    tasks = [(root, d, m, size, seed, anomaly_scale) for m in missing for d in ("dev", "eval")]
    truths = {}
    with ProcessPoolExecutor(max_workers=max(jobs, 1)) as pool:
        for machine, dataset, truth in pool.map(_write_machine_task, tasks):
            logging.info(f"wrote {root / dataset / machine}")
            truths.setdefault(machine, {}).update(truth)
    for machine, truth in truths.items():
        write_ground_truth(root, machine, truth)
    settings["machines"] = sorted(set(present) | set(machines))
    done.write_text(json.dumps(settings, indent=2))
    return settings


def _write_machine_task(args):
    return write_machine(*args)


def generate_outlier_pool(folder, count=40, seconds=10.0, seed=0):
    """Write ``count`` non-machine sounds (speech-, music-, bird- and rain-like) as a flat WAV folder.

    Any folder of WAV files can serve as the pool of external outlier exposure; this one lets
    the path run without downloading AudioSet.
    """
    folder = Path(folder)
    done = folder / DONE_FILE
    if done.exists():
        logging.info(f"{folder}: outlier pool already written; skipping")
        return
    folder.mkdir(parents=True, exist_ok=True)
    kinds = sorted(OUTLIER_SOUNDS)
    n = int(seconds * SAMPLE_RATE)
    for i in range(count):
        kind = kinds[i % len(kinds)]
        rng = np.random.default_rng([seed, 7777, i])
        wave = at_rms(outlier_sound(kind, rng, n), OUTPUT_RMS)
        pcm = np.clip(np.round(wave * 32768), -32768, 32767).astype(np.int16)
        with atomic_path(folder / f"{kind}_{i:04d}.wav") as tmp:
            sf.write(tmp, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    done.write_text(json.dumps({"count": count, "seconds": seconds, "seed": seed}))
