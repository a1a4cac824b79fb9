"""Load a config with the schema of the system it names; nothing on success, else one line naming the file,
the key and the fix. The recipe runs it before its first stage, so that a typo in the config stops the run
before data generation and the dump rather than after them, in the training stage's log.
"""

from asd_tools.bin.common import parser, run
from asd_tools.systems.registry import system_for_config


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--config", required=True, help="a config in conf/tuning/")
    args = p.parse_args(argv)
    run(lambda a: system_for_config(a.config).load_config(a.config), args)


if __name__ == "__main__":
    main()
