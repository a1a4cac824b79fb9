"""Stage 4: embeddings of inlier and test clips with each checkpoint of one machine type's experiment."""

from asd_tools.bin.common import best_device, experiment_args, lock_arg, parser, run
from asd_tools.systems.registry import system_for_experiment
from asd_tools.utils import folder_lock


def main(argv=None):
    p = parser(__doc__)
    experiment_args(p, checkpoints=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--force", action="store_true", help="re-embed even when the embeddings are current")
    lock_arg(p)
    args = p.parse_args(argv)

    def main_fn(a):
        system = system_for_experiment(a.expdir)
        names = a.checkpoints or system.checkpoints(a.expdir)
        if not names:
            raise FileNotFoundError(f"no checkpoints in {a.expdir}: run the training stage (stage 3) first")
        device = best_device(a.device)
        with folder_lock(a.expdir, a.wait_lock):
            for name in names:
                system.embed(a.expdir, a.dumpdir, a.machine, name, device, a.force)

    run(main_fn, args)


if __name__ == "__main__":
    main()
