"""Detector stage (shared by all systems): embeddings -> per-clip scores of every post-process.

Reads ``<embeddir>/inlier.npz`` and ``<embeddir>/test.npz`` and the ``detect:`` section of
the experiment's saved config; writes ``<embeddir>/scores.csv``.
"""

import logging
from pathlib import Path

from asd_tools.bin.common import parser, run
from asd_tools.config import config_to_dict, from_dict, read_config
from asd_tools.data.manifest import dump_identity, load_manifest
from asd_tools.data.split import lists_identity, read_list
from asd_tools.detect import DetectConfig, run_detectors
from asd_tools.embeddings import Embeddings
from asd_tools.provenance import Provenance, file_digest
from asd_tools.utils import write_csv

# 2: poolings named by orientation (max -> max_anomaly, upper_mean -> upper_mean_anomaly; new
#    min_anomaly and lower_mean_anomaly, the original recipe's max and upper_mean)
# (parameter grids per detector did not change it: the list form detectors + ks is recorded as
# written and scores the same columns, so existing experiments stay current)
DETECT_FORMAT = 2


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="the experiment's saved config.yaml (its detect: section)")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--embeddir", required=True)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)

    def main_fn(a):
        embeddir = Path(a.embeddir)
        out = embeddir / "scores.csv"
        section = (read_config(a.config) or {}).get("detect")  # bases merged, as every config is read
        cfg = from_dict(DetectConfig, section, f"{a.config}:detect")
        inputs = {
            "inlier": file_digest(embeddir / "inlier.npz"),
            "test": file_digest(embeddir / "test.npz"),
            f"dump/{a.machine}": dump_identity(a.dumpdir, a.machine),
        }
        if "valid" in cfg.inlier_sets:
            inputs.update(lists_identity(a.dumpdir, a.machine, ["valid"]))
        record = Provenance(embeddir, "detect", inputs, {"detect": config_to_dict(cfg)}, fmt=DETECT_FORMAT)
        if record.is_current(a.force):
            return
        record.invalidate()
        manifest = load_manifest(a.dumpdir, [a.machine])
        inlier = Embeddings.load(Path(a.embeddir) / "inlier.npz")
        test = Embeddings.load(Path(a.embeddir) / "test.npz")
        valid_ids = read_list(a.dumpdir, a.machine, "valid") if "valid" in cfg.inlier_sets else ()
        scores = run_detectors(inlier, test, manifest, cfg, valid_ids)
        write_csv(scores, out, float_format="%.6g")
        record.write()
        logging.info(f"{a.machine}: {scores.shape[1] - 2} post-processes scored -> {out}")

    run(main_fn, args)


if __name__ == "__main__":
    main()
