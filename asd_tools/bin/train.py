"""Stage 3: train one machine type's experiment folder with the system its config names (resumes a killed run).

Under ``torchrun --nproc_per_node N`` the N processes train one model together (``training/distributed.py``).
"""

import contextlib
import logging
import tempfile
from pathlib import Path

from asd_tools.artefacts import CONFIG
from asd_tools.bin.common import best_device, experiment_args, lock_arg, machines_arg, parser, run
from asd_tools.config import write_derived_config
from asd_tools.systems.registry import system_for_config
from asd_tools.training import distributed
from asd_tools.utils import folder_lock


def seeded_config(system, config_path, seed: int, folder) -> Path:
    """``config_path`` with every training seed of ``system`` set to ``seed``, written into ``folder``.

    Only the resolved config saved into the experiment folder (and its record) is kept: a derived
    file's path is never recorded, so a re-run with the same seed finds its model current.
    """
    if not system.seed_keys:
        logging.info(f"system {system.name} trains nothing at random: seed {seed} gives what every seed gives")
        return Path(config_path)
    return write_derived_config(config_path, dict.fromkeys(system.seed_keys, seed), Path(folder) / CONFIG)


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="a config in conf/tuning/; its 'system:' picks the system")
    experiment_args(p)
    p.add_argument("--machines", type=machines_arg, required=True, help="all machine types (others are negatives)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--force", action="store_true", help="retrain; a model already there is moved aside")
    p.add_argument("--seed", type=int, default=None, help="training seed: replaces every seed key of the config")
    lock_arg(p)
    args = p.parse_args(argv)

    def main_fn(a):
        device = best_device(a.device)  # first: a bad --device is the one error, whatever the config
        system = system_for_config(a.config)
        device = distributed.init(device)
        # under torchrun the main process holds the folder for all of them
        lock = folder_lock(a.expdir, a.wait_lock) if distributed.is_main() else contextlib.nullcontext()
        try:
            with lock, tempfile.TemporaryDirectory() as folder:  # one per process under torchrun
                config = a.config if a.seed is None else seeded_config(system, a.config, a.seed, folder)
                system.train(config, a.dumpdir, a.machine, a.machines, a.expdir, device, a.force)
        finally:
            distributed.finish()

    run(main_fn, args)


if __name__ == "__main__":
    main()
