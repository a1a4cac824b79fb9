"""Write the built-in synthetic data set in the layout of any registered year (default DCASE 2022).

``<root>/{dev,eval}/<machine>/{train,test}/*.wav`` with that year's machine types, units
(sections or machine IDs) and naming rule, shuffled unlabelled evaluation test names,
``attributes_SS.csv`` files (where the year has them; ``noAttribute`` names for the types whose
attributes the year hides), 2025's ``supplemental/`` folders (per section clean machine clips, the
machine without background, and noise-only clips, the background without machine; as many of each as
test clips per domain and state), and the year's ground truth under ``<root>/ground_truth/``. Every
clip is seeded from its own identity, so the set is identical whatever the order or parallelism
of generation. The DCASE 2022 layout is the one the README's figures were measured on.

Machine types without a sound model of their own are rendered by one of the seven models
(``SOUND_MODEL``), at operating points of their own: evaluation-only types of the first-shot
years use the model's evaluation-section operating points (3-5), so they sound unlike the
development type of the same model.
"""

import json
import logging
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asd_tools.constants import DOMAINS, NOISE, SAMPLE_RATE, SUPPLEMENTAL
from asd_tools.data.ground_truth import read_eval_data_list
from asd_tools.data.names import NAME_RULES, clip_splits
from asd_tools.data.synth_sounds import MACHINE_MODELS, OUTLIER_SOUNDS, at_rms, background, outlier_sound
from asd_tools.datasets.registry import DEFAULT, TYPES_2022, dataset_spec
from asd_tools.datasets.spec import unknown_machines_line
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


# Machine types of other years, rendered by the model of a machine type that works alike.
SOUND_MODEL = {
    "pump": "valve", "ToyConveyor": "ToyTrain",
    "bandsaw": "slider", "grinder": "gearbox", "shaker": "bearing", "ToyDrone": "fan",
    "ToyNscale": "ToyTrain", "ToyTank": "ToyCar", "Vacuum": "fan",
    "3DPrinter": "slider", "AirCompressor": "valve", "BrushlessMotor": "bearing", "HairDryer": "fan",
    "HoveringDrone": "fan", "RoboticArm": "slider", "Scanner": "slider", "ToothBrush": "gearbox",
    "ToyCircuit": "ToyTrain",
    "AutoTrash": "valve", "BandSealer": "slider", "CoffeeGrinder": "gearbox", "HomeCamera": "bearing",
    "Polisher": "gearbox", "ScrewFeeder": "valve", "ToyPet": "ToyCar", "ToyRCCar": "ToyCar",
}  # fmt: skip
MODEL_SECTIONS = 6  # each sound model has operating points for sections 0-5


def machine_code(machine: str) -> int:
    """A machine type's number in the clip seeds: the DCASE 2022 types keep their index (the
    README's data stay the same), other types a number derived from the name."""
    if machine in TYPES_2022:
        return TYPES_2022.index(machine)
    return 100 + zlib.crc32(machine.encode()) % 1_000_000


def sound_of(machine: str, unit: int, first_shot_eval: bool):
    """(sound model name, model section) that renders ``machine``'s section (or ID) ``unit``."""
    model = machine if machine in TYPES_2022 else SOUND_MODEL[machine]
    if first_shot_eval:  # an unseen type: the model's evaluation operating points, one per type
        return model, 3 + machine_code(machine) % 3
    return model, unit % MODEL_SECTIONS


@dataclass(frozen=True)
class ClipSpec:
    machine: str
    section: int  # the section (or machine ID) in the file name
    split: str
    domain: str
    state: str
    index: int
    model_section: int = -1  # the sound model's section (-1: the same as ``section``)


def clip_rng(seed, spec: ClipSpec):
    """A generator seeded by the clip's identity alone."""
    codes = [
        seed,
        machine_code(spec.machine),
        spec.section,
        ("train", "test", SUPPLEMENTAL).index(spec.split),
        DOMAINS.index(spec.domain),
        ("normal", "anomaly", NOISE).index(spec.state),
        spec.index,
    ]
    return np.random.default_rng(np.random.SeedSequence(codes))


def render_clip(spec: ClipSpec, size: SyntheticSize, seed: int, anomaly_scale: float):
    """Return (int16 samples, attribute suffix, anomaly kind or '') for one clip."""
    rng = clip_rng(seed, spec)
    n = int(size.clip_seconds * SAMPLE_RATE)
    model_name = spec.machine if spec.machine in MACHINE_MODELS else SOUND_MODEL[spec.machine]
    model = MACHINE_MODELS[model_name]()
    section = spec.section if spec.model_section < 0 else spec.model_section
    op = model.operating_point(section, spec.domain, rng)
    anomaly = None
    if spec.state == "anomaly":
        kind = model.anomaly_kinds[int(rng.integers(len(model.anomaly_kinds)))]
        # Levels spread from barely audible to clear: many anomalies are subtle.
        anomaly = (kind, anomaly_scale * rng.uniform(0.15, 1.0))
    machine = model.render(op, rng, n, anomaly)
    snr_db = 4.0 - 1.5 * (section % 3) + rng.uniform(-3.0, 3.0) - (3.0 if spec.domain == "target" else 0.0)
    noise = background(rng, n, spec.domain, section)
    if spec.split == SUPPLEMENTAL:  # clean machine sound, or the background alone
        mix = at_rms(noise, 1.0) if spec.state == NOISE else at_rms(machine, 1.0)
    else:
        mix = at_rms(machine, 1.0) + at_rms(noise, 10 ** (-snr_db / 20))
    mix = at_rms(mix, OUTPUT_RMS * rng.uniform(0.8, 1.25))
    pcm = np.clip(np.round(mix * 32768), -32768, 32767).astype(np.int16)
    return pcm, op.attributes, anomaly[0] if anomaly else ""


def section_specs(machine, section, size: SyntheticSize, domains=DOMAINS, model_section=-1):
    """All clips of one section, in the real counts' proportions (one domain: its counts summed)."""
    specs = []
    train = (("source", size.train_source), ("target", size.train_target))
    if len(domains) == 1:
        train = ((domains[0], size.train_source + size.train_target),)
    for domain, count in train:
        specs += [ClipSpec(machine, section, "train", domain, "normal", i, model_section) for i in range(count)]
    per_state = size.test_per_domain_state * len(DOMAINS) // len(domains)
    for domain in domains:
        for state in ("normal", "anomaly"):
            specs += [ClipSpec(machine, section, "test", domain, state, i, model_section) for i in range(per_state)]
    return specs


def supplemental_specs(machine, section, count, model_section=-1):
    """2025's supplemental clips of one section: ``count`` clean machine clips, ``count`` noise-only clips."""
    return [
        ClipSpec(machine, section, SUPPLEMENTAL, "source", state, i, model_section)
        for state in ("normal", NOISE)
        for i in range(count)
    ]


def supplemental_name(spec: ClipSpec) -> str:
    """The names a third-party 2025 loader expects (the real archives' names are not documented)."""
    tags = "noise_supplemental_normal" if spec.state == NOISE else f"{spec.domain}_supplemental_machine"
    return f"section_{spec.section:02d}_{tags}_{spec.index:04d}.wav"


def labelled_name(spec: ClipSpec, attributes: str, naming: str = "section") -> str:
    if spec.split == SUPPLEMENTAL:
        return supplemental_name(spec)
    if naming == "machine_id":
        return f"{spec.state}_id_{spec.section:02d}_{spec.index:08d}.wav"
    suffix = f"_{attributes}" if attributes else ""
    return f"section_{spec.section:02d}_{spec.domain}_{spec.split}_{spec.state}_{spec.index:04d}{suffix}.wav"


def evaluation_names(test_specs, section, naming, shuffle) -> dict:
    """Anonymised names of one evaluation section's test clips, in shuffled order (2021: per domain)."""
    if naming == "section":  # section_SS_NNNN.wav
        order = shuffle.permutation(len(test_specs))
        return {spec: f"section_{section:02d}_{int(i):04d}.wav" for spec, i in zip(test_specs, order)}
    if naming == "machine_id":  # id_NN_NNNNNNNN.wav
        order = shuffle.permutation(len(test_specs))
        return {spec: f"id_{section:02d}_{int(i):08d}.wav" for spec, i in zip(test_specs, order)}
    names = {}  # section_SS_<domain>_test_NNNN.wav
    for domain in DOMAINS:
        in_domain = [s for s in test_specs if s.domain == domain]
        order = shuffle.permutation(len(in_domain))
        names.update({s: f"section_{section:02d}_{domain}_test_{int(i):04d}.wav" for s, i in zip(in_domain, order)})
    return names


def write_machine(
    root: Path, dataset: str, machine: str, size: SyntheticSize, seed: int, anomaly_scale: float, layout=DEFAULT
):
    """Write one (dataset, machine) folder via a temporary folder, and its ground truth rows."""
    spec_ = dataset_spec(layout)
    naming = spec_.naming
    domains = (NAME_RULES[naming].domain,) if NAME_RULES[naming].domain in DOMAINS else DOMAINS
    hidden = machine in spec_.hidden_attributes
    first_shot_eval = spec_.first_shot and dataset == "eval"
    final = root / dataset / machine
    tmp = root / dataset / f".{machine}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # only ever our own unfinished temporary folder
    for split in clip_splits(spec_):
        (tmp / split).mkdir(parents=True)
    shuffle = np.random.default_rng([seed, machine_code(machine), 99])
    truth = {}
    attribute_rows = {}
    for section in spec_.units(machine, dataset):
        model_section = -1 if layout == DEFAULT else sound_of(machine, section, first_shot_eval)[1]
        specs = section_specs(machine, section, size, domains, model_section)
        if spec_.supplemental:
            specs += supplemental_specs(machine, section, size.test_per_domain_state, model_section)
        test_specs = [s for s in specs if s.split == "test"]
        eval_names = evaluation_names(test_specs, section, naming, shuffle) if dataset == "eval" else {}
        for spec in specs:
            pcm, attributes, _kind = render_clip(spec, size, seed, anomaly_scale)
            attributes = "noAttribute" if hidden else attributes
            full_name = labelled_name(spec, "" if _bare_test_name(spec, naming) else attributes, naming)
            name = eval_names.get(spec) or full_name
            sf.write(tmp / spec.split / name, pcm, SAMPLE_RATE, subtype="PCM_16")
            if spec.split == SUPPLEMENTAL:
                continue
            attribute_rows.setdefault(section, []).append(
                f"{machine}/{spec.split}/{name}," + attributes_csv("" if hidden else attributes)
            )
            if spec in eval_names:
                truth.setdefault(section, []).append(
                    (name, int(spec.state == "anomaly"), int(spec.domain == "target"), full_name)
                )
    if spec_.attribute_files:
        for section, rows in attribute_rows.items():
            header = "file_name,d1p,d1v,d2p,d2v,d3p,d3v,d4p,d4v\n"
            (tmp / f"attributes_{section:02d}.csv").write_text(header + "\n".join(rows) + "\n")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return machine, dataset, truth


def _bare_test_name(spec: ClipSpec, naming: str) -> bool:
    """2021's test names carry no attributes; 2020's names none at all."""
    return naming == "machine_id" or (naming == "section_domain_test" and spec.split == "test")


def attributes_csv(attributes: str) -> str:
    """``car_A1_spd_28V`` -> ``car,A1,spd,28V`` (ragged rows, as in the real files)."""
    return ",".join(attributes.split("_")) if attributes else ""


def write_ground_truth(root: Path, machine: str, truth: dict, layout=DEFAULT) -> None:
    """The year's ground-truth files for one machine type (see ``data/ground_truth.py`` for the formats)."""
    spec = dataset_spec(layout)
    fmt = spec.ground_truth.format
    folder = root / "ground_truth"
    for section, rows in truth.items():
        if fmt == "label_domain_files":  # ground_truth_data (1 = anomaly), ground_truth_domain (1 = target)
            for sub, column in (("ground_truth_data", 1), ("ground_truth_domain", 2)):
                path = folder / sub / f"ground_truth_{machine}_section_{section:02d}_test.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(f"{row[0]},{row[column]}\n" for row in sorted(rows)))
        elif fmt == "per_domain_files":  # one file per domain, 1 = anomaly
            for target, domain in enumerate(("source", "target")):
                path = folder / "ground_truth_data" / f"ground_truth_{machine}_section_{section:02d}_{domain}_test.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(f"{row[0]},{row[1]}\n" for row in sorted(rows) if row[2] == target))


def write_eval_data_list(root: Path, truths: dict, layout=DEFAULT) -> None:
    """The evaluation list (2020, 2025): per machine type a line with its name, then
    ``anonymised,labelled[,label]`` rows (2020 writes the label column too); machine types already
    in the list and not regenerated are kept."""
    spec = dataset_spec(layout)
    path = root / "ground_truth" / spec.ground_truth.list_name
    blocks = {}
    if path.exists():
        for machine, rows in read_eval_data_list(path).items():
            blocks[machine] = [
                ",".join(x for x in (anon, full, label) if x is not None) for _, anon, full, label in rows
            ]
    with_label = spec.naming == "machine_id"
    for machine, truth in truths.items():
        rows = sorted(row for section_rows in truth.values() for row in section_rows)
        blocks[machine] = [f"{r[0]},{r[3]}" + (f",{r[1]}" if with_label else "") for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{m}\n" + "".join(f"{row}\n" for row in blocks[m]) for m in sorted(blocks)))


def generate(root, size_name="small", machines=None, seed=0, anomaly_scale=1.0, jobs=2, force=False, layout=DEFAULT):
    """Generate the data set in the layout of ``layout`` (a registered year) under ``root``; a finished
    identical set is left as it is. ``machines``: default every machine type of the year."""
    root = Path(root)
    spec = dataset_spec(layout)
    machines = list(machines or spec.machines())
    if size_name not in SIZES:
        raise ValueError(f"unknown synthetic size '{size_name}': choose one of {sorted(SIZES)}")
    unknown = sorted(set(machines) - set(spec.machines()))
    if unknown:
        raise ValueError(unknown_machines_line(unknown, spec.machines(), f" in {layout}"))
    settings = {
        "size": size_name,
        "machines": sorted(machines),
        "seed": seed,
        "anomaly_scale": anomaly_scale,
        **asdict(SIZES[size_name]),
        **({} if layout == DEFAULT else {"layout": layout}),  # sets made before layouts existed stay complete
        **({"supplemental": SIZES[size_name].test_per_domain_state} if spec.supplemental else {}),
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
    tasks = [(root, d, m, size, seed, anomaly_scale, layout) for m in missing for d in spec.datasets_of(m)]
    truths = {}
    with ProcessPoolExecutor(max_workers=max(jobs, 1)) as pool:
        for machine, dataset, truth in pool.map(_write_machine_task, tasks):
            logging.info(f"wrote {root / dataset / machine}")
            truths.setdefault(machine, {}).update(truth)
    if spec.ground_truth.format == "eval_data_list":
        write_eval_data_list(root, {m: t for m, t in truths.items() if t}, layout)
    for machine, truth in truths.items():
        write_ground_truth(root, machine, truth, layout)
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
