"""Stage 1: validate, normalise and dump the clips of each machine type; write the manifest."""

from asd_tools.bin.common import layout_arg, lock_arg, machines_arg, parser, run
from asd_tools.data.dump import dump_machine, read_dump_config
from asd_tools.utils import folder_lock


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--data_root", required=True, help="folder with dev/ and eval/ in the layout of --layout")
    p.add_argument("--dumpdir", required=True)
    p.add_argument("--machines", type=machines_arg, required=True)
    layout_arg(p)
    p.add_argument("--config", default=None, help="the dump's settings, e.g. conf/dump.yaml (default: the schema's)")
    p.add_argument("--force", action="store_true", help="re-dump even when the dump is current")
    lock_arg(p)
    args = p.parse_args(argv)

    def main_fn(a):
        config = read_dump_config(a.config)
        with folder_lock(a.dumpdir, a.wait_lock):
            for machine in a.machines:
                dump_machine(a.data_root, machine, a.dumpdir, a.force, a.layout, config)

    run(main_fn, args)


if __name__ == "__main__":
    main()
