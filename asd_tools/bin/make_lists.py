"""Stage 2: split each machine type's training clips into train / valid lists (+ test list)."""

from asd_tools.bin.common import lock_arg, machines_arg, parser, run, verify_arg
from asd_tools.data.split import FOLD_RULES, write_lists
from asd_tools.utils import folder_lock


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument("--valid_ratio", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument(
        "--fold_rule",
        choices=list(FOLD_RULES),
        required=True,
        help="folds from valid_ratio: int = int(1 / valid_ratio) (the original), round = round(1 / valid_ratio)",
    )
    p.add_argument("--force", action="store_true")
    verify_arg(p)
    lock_arg(p)
    args = p.parse_args(argv)

    def main_fn(a):
        with folder_lock(a.dumpdir, a.wait_lock):
            for machine in a.machines:
                write_lists(a.dumpdir, machine, a.valid_ratio, a.seed, force=a.force, fold_rule=a.fold_rule)

    run(main_fn, args)


if __name__ == "__main__":
    main()
