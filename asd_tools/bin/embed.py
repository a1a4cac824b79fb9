"""Stage 4: embeddings of inlier and test clips with each checkpoint of one machine type."""

from asd_tools.bin.common import best_device, parser, run
from asd_tools.systems.serial_oe.recipe import embed
from asd_tools.training.trainer import checkpoint_names


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--expdir", required=True, help="exp/<data>/<machine>/<tag> (holds config.yaml and checkpoints)")
    p.add_argument("--checkpoints", nargs="*", default=None, help="checkpoint names (default: all present)")
    p.add_argument("--device", default="auto")
    p.add_argument("--force", action="store_true", help="re-embed even when the embeddings are current")
    args = p.parse_args(argv)

    def main_fn(a):
        names = a.checkpoints or checkpoint_names(a.expdir)
        if not names:
            raise FileNotFoundError(f"no checkpoints in {a.expdir}: run the training stage (stage 3) first")
        for name in names:
            embed(a.expdir, a.dumpdir, a.machine, name, best_device(a.device), a.force)

    run(main_fn, args)


if __name__ == "__main__":
    main()
