"""Print facts of a registered data set for the shell recipes (which never list machine types themselves).

``python -m asd_tools.bin.layout --layout dcase2023 --machines`` -> the year's machine types, development
ones first; ``--names`` -> every registered data set; ``--check "fan valve"`` -> nothing, or one line
naming the machine types that are not the year's (and what each was probably meant to be).
"""

from asd_tools.bin.common import layout_arg, parser, run
from asd_tools.datasets.registry import DATASET_SPECS, dataset_spec
from asd_tools.datasets.spec import unknown_machines_line


def check_machines(layout: str, names: str) -> None:
    known = dataset_spec(layout).machines()
    unknown = [name for name in names.replace(",", " ").split() if name not in known]
    if unknown:
        raise ValueError(unknown_machines_line(unknown, known, f" in {layout}"))


def facts(a) -> None:
    if a.check is not None:
        check_machines(a.layout, a.check)
    else:
        print(" ".join(dataset_spec(a.layout).machines() if a.machines else DATASET_SPECS))


def main(argv=None):
    p = parser(__doc__)
    layout_arg(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--machines", action="store_true", help="the machine types of --layout, space-separated")
    what.add_argument("--names", action="store_true", help="every registered data set")
    what.add_argument("--check", default=None, help="machine type names: fail with one line unless --layout has each")
    args = p.parse_args(argv)
    run(facts, args)


if __name__ == "__main__":
    main()
