"""DG-Mix stage 5: clip embeddings (mean of 2 s windows, or the original first window) per checkpoint."""

from asd_tools.bin.common import best_device, parser, run
from asd_tools.config import load_config
from asd_tools.systems.dgmix.config import DGMixConfig
from asd_tools.systems.dgmix.recipe import CONFIG_NAME, embed


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--expdir", required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--force", action="store_true", help="re-embed even when the embeddings are current")
    args = p.parse_args(argv)

    def main_fn(a):
        cfg = load_config(f"{a.expdir}/{CONFIG_NAME}", DGMixConfig)
        for checkpoint in cfg.embed.checkpoints:
            embed(a.expdir, a.dumpdir, a.machine, checkpoint, best_device(a.device), a.force)

    run(main_fn, args)


if __name__ == "__main__":
    main()
