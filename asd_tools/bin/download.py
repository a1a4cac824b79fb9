"""Stage 0 (real data): download, verify and unpack DCASE 2022 Task 2 archives and ground truth."""

from asd_tools.bin.common import machines_arg, parser, run
from asd_tools.data.download import ARCHIVES, GROUND_TRUTH_URL, ZENODO_URL, download_dcase2022


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--machines", type=machines_arg, required=True)
    p.add_argument("--download_dir", required=True, help="archives are kept here (never deleted)")
    p.add_argument("--data_root", required=True, help="unpacked DCASE 2022 layout: dev/, eval/, ground_truth/")
    p.add_argument("--sets", nargs="+", default=list(ARCHIVES), choices=list(ARCHIVES))
    p.add_argument("--zenodo_url", default=ZENODO_URL)
    p.add_argument("--ground_truth_url", default=GROUND_TRUTH_URL)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a server")
    args = p.parse_args(argv)
    run(
        lambda a: download_dcase2022(
            a.machines, a.download_dir, a.data_root, a.sets, a.zenodo_url, a.ground_truth_url, a.timeout
        ),
        args,
    )


if __name__ == "__main__":
    main()
