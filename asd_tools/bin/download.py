"""Stage 0 (real data): download, verify and unpack one year's DCASE Task 2 archives and ground truth."""

from asd_tools.bin.common import layout_arg, machines_arg, parser, run
from asd_tools.data.download import SETS, ZENODO_URL, download


def main(argv=None):
    p = parser(__doc__)
    layout_arg(p)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument("--download_dir", required=True, help="archives are kept here (never deleted)")
    p.add_argument("--data_root", required=True, help="unpacked layout: dev/, eval/, ground_truth/")
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--zenodo_url", default=ZENODO_URL)
    p.add_argument("--ground_truth_url", default=None, help="base URL of the ground truth (default: the year's)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a server")
    args = p.parse_args(argv)
    run(
        lambda a: download(
            a.machines, a.download_dir, a.data_root, a.sets, a.zenodo_url, a.ground_truth_url, a.timeout, a.layout
        ),
        args,
    )


if __name__ == "__main__":
    main()
