"""External outlier exposure: dump a folder of WAV files (any names) as an outlier pool.

With ``--synthetic N`` the folder is first filled with N built-in non-machine sounds.
"""

from asd_tools.bin.common import lock_arg, parser, run
from asd_tools.data.dump import dump_pool
from asd_tools.data.synthetic import generate_outlier_pool
from asd_tools.utils import folder_lock


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--folder", required=True, help="folder of WAV files (searched recursively)")
    p.add_argument("--dumpdir", required=True, help="the pool goes to <dumpdir>/outlier_pool/")
    p.add_argument("--synthetic", type=int, default=0, help="write this many synthetic outlier clips first")
    p.add_argument("--seconds", type=float, default=10.0, help="length of synthetic outlier clips")
    p.add_argument("--force", action="store_true")
    lock_arg(p)
    args = p.parse_args(argv)

    def main_fn(a):
        if a.synthetic:
            generate_outlier_pool(a.folder, a.synthetic, a.seconds)
        with folder_lock(a.dumpdir, a.wait_lock):
            dump_pool(a.folder, a.dumpdir, a.force)

    run(main_fn, args)


if __name__ == "__main__":
    main()
