#!/usr/bin/env python3
"""The seed recipe's command, kept: it runs ``python -m asd_tools.bin.diagnose_embedding``."""

from asd_tools.bin.diagnose_embedding import main

if __name__ == "__main__":
    main()
