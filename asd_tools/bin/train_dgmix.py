"""DG-Mix stages 3-4 for one machine type: VICReg-with-mixup pre-training, then fine-tuning."""

from asd_tools.bin.common import best_device, parser, run
from asd_tools.systems.dgmix.recipe import finetune, pretrain


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--stage", choices=["pretrain", "finetune"], required=True)
    p.add_argument("--config", help="the DG-Mix config (pretrain; finetune reads the saved copy)")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machine", required=True)
    p.add_argument("--expdir", required=True, help="exp/<data>/<machine>/<tag>")
    p.add_argument("--device", default="auto")
    p.add_argument("--force", action="store_true", help="retrain; a model already there is moved aside")
    args = p.parse_args(argv)

    def main_fn(a):
        device = best_device(a.device)
        if a.stage == "pretrain":
            if not a.config:
                raise ValueError("--config is needed for pre-training")
            pretrain(a.config, a.dumpdir, a.machine, a.expdir, device, a.force)
        else:
            finetune(a.expdir, a.dumpdir, a.machine, device, a.force)

    run(main_fn, args)


if __name__ == "__main__":
    main()
