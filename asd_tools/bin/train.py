"""Stage 3: train one machine type's experiment folder with the system its config names (resumes a killed run).

Under ``torchrun --nproc_per_node N`` the N processes train one model together (``training/distributed.py``).
"""

from asd_tools.bin.common import best_device, experiment_args, machines_arg, parser, run
from asd_tools.systems.registry import system_for_config
from asd_tools.training import distributed


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="a config in conf/tuning/; its 'system:' picks the system")
    experiment_args(p)
    p.add_argument("--machines", type=machines_arg, required=True, help="all machine types (others are negatives)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--force", action="store_true", help="retrain; a model already there is moved aside")
    args = p.parse_args(argv)

    def main_fn(a):
        device = best_device(a.device)  # first: a bad --device is the one error, whatever the config
        system = system_for_config(a.config)
        device = distributed.init(device)
        try:
            system.train(a.config, a.dumpdir, a.machine, a.machines, a.expdir, device, a.force)
        finally:
            distributed.finish()

    run(main_fn, args)


if __name__ == "__main__":
    main()
