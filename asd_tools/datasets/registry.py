"""Every DCASE Task 2 year as a :class:`~asd_tools.datasets.spec.DatasetSpec`: the only place that names a year.

Facts from the official baselines' download scripts and the official evaluators (README:
"Data sets"); where those disagree with a README, the scripts and the ground truth win
(e.g. ``dev_<machine>.zip``, not ``dev_data_<machine>.zip``, for 2022-2025).
"""

from asd_tools.datasets.spec import Archive, DatasetSpec, GroundTruth, same_units

RAW = "https://raw.githubusercontent.com"
# The official baseline repository keeps every year's evaluation list (eval_data_list_<year>.csv).
BASELINE_LISTS = f"{RAW}/nttcslab/dcase2023_task2_baseline_ae/HEAD/datasets"

MIMII_2020 = ("fan", "pump", "slider", "valve")
DCASE2020 = DatasetSpec(
    name="dcase2020",
    title="DCASE 2020 Task 2",
    dev_machines=("ToyCar", "ToyConveyor", *MIMII_2020),
    eval_machines=("ToyCar", "ToyConveyor", *MIMII_2020),
    dev_units={"ToyCar": (1, 2, 3, 4), "ToyConveyor": (1, 2, 3), **same_units(MIMII_2020, (0, 2, 4, 6))},
    eval_units={"ToyCar": (5, 6, 7), "ToyConveyor": (4, 5, 6), **same_units(MIMII_2020, (1, 3, 5))},
    unit="id",
    naming="machine_id",
    attribute_files=False,
    metric="per_id_mean",
    submission="machine_id",
    ground_truth=GroundTruth("eval_data_list", BASELINE_LISTS, "eval_data_list_2020.csv"),
    archives=(
        Archive("dev", "3678171", "dev_data_{machine}.zip", "dev"),
        Archive("eval_train", "3727685", "eval_data_train_{machine}.zip", "eval"),
        Archive("eval_test", "3841772", "eval_data_test_{machine}.zip", "eval"),
    ),
    source="y-kawagu/dcase2020_task2_evaluator; nttcslab/dcase2023_task2_baseline_ae tools/data_download_2020.sh",
)

TYPES_2021 = ("fan", "gearbox", "pump", "slider", "ToyCar", "ToyTrain", "valve")
DCASE2021 = DatasetSpec(
    name="dcase2021",
    title="DCASE 2021 Task 2",
    dev_machines=TYPES_2021,
    eval_machines=TYPES_2021,
    dev_units=same_units(TYPES_2021, (0, 1, 2)),
    eval_units=same_units(TYPES_2021, (3, 4, 5)),
    unit="section",
    naming="section_domain_test",
    metric="per_domain_hmean",
    submission="section_domain",
    ground_truth=GroundTruth("per_domain_files", f"{RAW}/y-kawagu/dcase2021_task2_evaluator/HEAD"),
    archives=(
        Archive("dev", "4562016", "dev_data_{machine}.zip", "dev"),
        Archive("eval_train", "4660992", "eval_data_{machine}_train.zip", "eval"),
        Archive("eval_test", "4884786", "eval_data_{machine}_test.zip", "eval"),
    ),
    test_folders=("source_test", "target_test"),
    attribute_files=False,
    source="y-kawagu/dcase2021_task2_evaluator; nttcslab tools/data_download_2021.sh",
)

TYPES_2022 = ("bearing", "fan", "gearbox", "slider", "ToyCar", "ToyTrain", "valve")
DCASE2022 = DatasetSpec(
    name="dcase2022",
    title="DCASE 2022 Task 2",
    dev_machines=TYPES_2022,
    eval_machines=TYPES_2022,
    dev_units=same_units(TYPES_2022, (0, 1, 2)),
    eval_units=same_units(TYPES_2022, (3, 4, 5)),
    unit="section",
    naming="section",
    metric="source_target_hmean",
    submission="section",
    ground_truth=GroundTruth("label_domain_files", f"{RAW}/Kota-Dohi/dcase2022_evaluator/main"),
    archives=(
        Archive("dev", "6355122", "dev_{machine}.zip", "dev"),
        Archive("eval_train", "6462969", "eval_data_{machine}_train.zip", "eval"),
        Archive("eval_test", "6586456", "eval_data_{machine}_test.zip", "eval"),
    ),
    source="Kota-Dohi/dcase2022_evaluator; nttcslab tools/data_download_2022.sh",
)


def first_shot(name, eval_machines, records, ground_truth, renamed=None, supplemental=False, hidden=(), source=""):
    """A first-shot year (2023 on): one section 00 per machine type, evaluation machine types unseen in development."""
    dev_record, train_record, test_record = records
    return DatasetSpec(
        name=name,
        title=f"DCASE {name[-4:]} Task 2",
        dev_machines=TYPES_2022,
        eval_machines=eval_machines,
        dev_units=same_units(TYPES_2022, (0,)),
        eval_units=same_units(eval_machines, (0,)),
        unit="section",
        naming="section",
        metric="source_target_hmean",
        submission="section",
        ground_truth=ground_truth,
        archives=(
            Archive("dev", dev_record, "dev_{machine}.zip", "dev"),
            Archive("eval_train", train_record, "eval_data_{machine}_train.zip", "eval", renamed or {}),
            Archive("eval_test", test_record, "eval_data_{machine}_test.zip", "eval"),
        ),
        first_shot=True,
        supplemental=supplemental,
        hidden_attributes=hidden,
        source=source,
    )


DCASE2023 = first_shot(
    "dcase2023",
    ("bandsaw", "grinder", "shaker", "ToyDrone", "ToyNscale", "ToyTank", "Vacuum"),
    ("7882613", "7830345", "7860847"),
    GroundTruth("label_domain_files", f"{RAW}/nttcslab/dcase2023_task2_evaluator/HEAD"),
    source="nttcslab/dcase2023_task2_evaluator; nttcslab tools/data_download_2023.sh",
)
DCASE2024 = first_shot(
    "dcase2024",
    (
        "3DPrinter",
        "AirCompressor",
        "BrushlessMotor",
        "HairDryer",
        "HoveringDrone",
        "RoboticArm",
        "Scanner",
        "ToothBrush",
        "ToyCircuit",
    ),
    ("10902294", "11259435", "11363076"),
    GroundTruth("label_domain_files", f"{RAW}/nttcslab/dcase2024_task2_evaluator/HEAD"),
    # Changelog 3.1.1: two additional-training archives were re-issued under new names.
    renamed={"3DPrinter": "eval_data_3DPrinter_train_r2.zip", "RoboticArm": "eval_data_RoboticArm_train_r2.zip"},
    hidden=("gearbox", "slider", "ToyTrain", "AirCompressor", "BrushlessMotor", "HoveringDrone", "ToothBrush"),
    source="nttcslab/dcase2024_task2_evaluator; nttcslab tools/data_download_2024.sh",
)
DCASE2025 = first_shot(
    "dcase2025",
    ("AutoTrash", "BandSealer", "CoffeeGrinder", "HomeCamera", "Polisher", "ScrewFeeder", "ToyPet", "ToyRCCar"),
    ("15097779", "15392814", "15519362"),
    # The 2025 evaluator's files could not be read; the baseline's list (anonymised, labelled name) could.
    GroundTruth("eval_data_list", BASELINE_LISTS, "eval_data_list_2025.csv"),
    supplemental=True,
    hidden=("bearing", "slider", "ToyTrain", "AutoTrash", "Polisher", "ScrewFeeder", "ToyPet"),
    source="nttcslab/dcase2023_task2_baseline_ae datasets/eval_data_list_2025.csv, tools/data_download_2025.sh",
)

DATASET_SPECS = {spec.name: spec for spec in (DCASE2020, DCASE2021, DCASE2022, DCASE2023, DCASE2024, DCASE2025)}
DEFAULT = "dcase2022"  # the recipe's year: the default of --layout (a dump records its own layout)


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of ``name`` (``dcase2020`` ... ``dcase2025``); ValueError listing the known ones otherwise."""
    if name not in DATASET_SPECS:
        raise ValueError(f"unknown data set '{name}': choose one of {', '.join(DATASET_SPECS)}")
    return DATASET_SPECS[name]


def all_machine_types() -> tuple:
    """Every machine type of every registered year (for checking names before a data set is known)."""
    return tuple(dict.fromkeys(m for spec in DATASET_SPECS.values() for m in spec.machines()))
