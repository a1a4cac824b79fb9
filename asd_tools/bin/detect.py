"""Stage 5, the detector stage shared by all systems: embeddings -> per-clip scores of every post-process.

For each checkpoint of one machine type's experiment (the ones its system embeds), reads
``<expdir>/<checkpoint>/{inlier,test}.npz`` and the ``detect:`` section of the experiment's
saved config, and writes ``<expdir>/<checkpoint>/scores.csv`` (``asd_tools.backend.detect.detect_stage``).
"""

import logging
from pathlib import Path

from asd_tools.artefacts import CONFIG, TEST_EMBEDDINGS
from asd_tools.backend.detect import detect_stage
from asd_tools.bin.common import experiment_args, lock_arg, parser, run
from asd_tools.utils import folder_lock


def embedded_checkpoints(expdir):
    """Sub-folders of ``expdir`` that the embed stage wrote (they hold ``test.npz``), in name order."""
    return sorted(p.name for p in Path(expdir).iterdir() if (p / TEST_EMBEDDINGS).is_file())


def main(argv=None):
    p = parser(__doc__)
    experiment_args(p, checkpoints=True)
    p.add_argument("--force", action="store_true")
    lock_arg(p)
    args = p.parse_args(argv)

    def main_fn(a):
        with folder_lock(a.expdir, a.wait_lock):
            names = a.checkpoints or embedded_checkpoints(a.expdir)
            if not names:
                raise FileNotFoundError(f"no embeddings in {a.expdir}: run the embed stage (stage 4) first")
            for name in names:
                logging.info(f"{a.machine}: detectors on {name}")
                detect_stage(Path(a.expdir) / CONFIG, a.dumpdir, a.machine, Path(a.expdir) / name, a.force)

    run(main_fn, args)


if __name__ == "__main__":
    main()
