"""Detector stage (shared by all systems): embeddings -> per-clip scores of every post-process.

Reads ``<embeddir>/inlier.npz`` and ``<embeddir>/test.npz`` and the ``detect:`` section of
the experiment's saved config; writes ``<embeddir>/scores.csv`` (``asd_tools.backend.detect.detect_stage``).
"""

from asd_tools.backend.detect import detect_stage
from asd_tools.bin.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="the experiment's saved config.yaml (its detect: section)")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--embeddir", required=True)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    run(lambda a: detect_stage(a.config, a.dumpdir, a.machine, a.embeddir, a.force), args)


if __name__ == "__main__":
    main()
