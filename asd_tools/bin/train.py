"""Stage 3: train one machine type's feature extractor (resumes a killed run)."""

from asd_tools.bin.common import best_device, machines_arg, parser, run
from asd_tools.systems.serial_oe.recipe import train


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--machines", type=machines_arg, required=True, help="all machine types (others are negatives)")
    p.add_argument("--expdir", required=True, help="exp/<data>/<machine>/<tag>")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--force", action="store_true", help="retrain; a model already there is moved aside")
    args = p.parse_args(argv)
    run(lambda a: train(a.config, a.dumpdir, a.machine, a.machines, a.expdir, best_device(a.device), a.force), args)


if __name__ == "__main__":
    main()
