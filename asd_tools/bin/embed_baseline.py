"""Baseline extractor: per-clip log-mel statistics of inlier and test clips of one machine type."""

from pathlib import Path

from asd_tools.bin.common import parser, run
from asd_tools.config import config_to_dict, load_config, save_config
from asd_tools.data.manifest import ClipStore, dump_identity, load_manifest
from asd_tools.data.split import lists_identity, read_list, read_lists
from asd_tools.provenance import Provenance
from asd_tools.systems.baseline.config import BaselineConfig
from asd_tools.systems.baseline.features import logmel_statistics


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--expdir", required=True, help="exp/<machine>/<tag>: gets config.yaml and features/")
    p.add_argument("--force", action="store_true", help="recompute even when the features are current")
    args = p.parse_args(argv)

    def main_fn(a):
        cfg = load_config(a.config, BaselineConfig)
        expdir = Path(a.expdir)
        save_config(cfg, expdir / "config.yaml")  # no model is trained: the detect section may change freely
        inputs = {f"dump/{a.machine}": dump_identity(a.dumpdir, a.machine)}
        inputs.update(lists_identity(a.dumpdir, a.machine, sorted({*cfg.inlier_subsets, "test"})))
        settings = {"logmel": config_to_dict(cfg)["logmel"], "inlier_subsets": cfg.inlier_subsets}
        record = Provenance(expdir / "features", "embed", inputs, settings)
        if record.is_current(a.force):
            return
        record.invalidate()
        manifest = load_manifest(a.dumpdir, [a.machine])
        store = ClipStore(a.dumpdir)
        inliers = read_lists(a.dumpdir, a.machine, cfg.inlier_subsets)
        test = read_list(a.dumpdir, a.machine, "test")
        for name, ids in (("inlier", inliers), ("test", test)):
            logmel_statistics(manifest.loc[ids], store, cfg.logmel).save(expdir / "features" / f"{name}.npz")
        record.write()

    run(main_fn, args)


if __name__ == "__main__":
    main()
