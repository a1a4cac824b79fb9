"""Print facts of a registered data set for the shell recipes (which never list machine types themselves).

``python -m asd_tools.bin.layout --layout dcase2023 --machines`` -> the year's machine types, development
ones first; ``--names`` -> every registered data set.
"""

from asd_tools.bin.common import layout_arg, parser, run
from asd_tools.datasets.registry import DATASET_SPECS, dataset_spec


def main(argv=None):
    p = parser(__doc__)
    layout_arg(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--machines", action="store_true", help="the machine types of --layout, space-separated")
    what.add_argument("--names", action="store_true", help="every registered data set")
    args = p.parse_args(argv)
    run(lambda a: print(" ".join(dataset_spec(a.layout).machines() if a.machines else DATASET_SPECS)), args)


if __name__ == "__main__":
    main()
