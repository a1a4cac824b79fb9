"""Baseline extractor: per-clip log-mel statistics of inlier and test clips of one machine type."""

from asd_tools.bin.common import parser, run
from asd_tools.systems.baseline.recipe import embed_stage


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--expdir", required=True, help="exp/<machine>/<tag>: gets config.yaml and features/")
    p.add_argument("--force", action="store_true", help="recompute even when the features are current")
    args = p.parse_args(argv)
    run(lambda a: embed_stage(a.config, a.dumpdir, a.machine, a.expdir, a.force), args)


if __name__ == "__main__":
    main()
