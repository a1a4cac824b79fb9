"""Write the built-in synthetic data set in the layout of any registered year (stage 0)."""

from asd_tools.bin.common import layout_arg, machines_arg, parser, run
from asd_tools.data.synthetic import SIZES, generate


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--root", required=True, help="output folder (gets dev/, eval/, ground_truth/)")
    p.add_argument("--size", default="small", choices=sorted(SIZES))
    layout_arg(p)
    p.add_argument("--machines", type=machines_arg, default=None, help="default: every machine type of --layout")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--anomaly_scale", type=float, default=1.0, help="multiplies every anomaly's level")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--force", action="store_true", help="regenerate a finished set made with other settings")
    args = p.parse_args(argv)
    run(
        lambda a: generate(a.root, a.size, a.machines, a.seed, a.anomaly_scale, a.jobs, a.force, a.layout),
        args,
    )


if __name__ == "__main__":
    main()
