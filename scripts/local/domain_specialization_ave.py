#!/usr/bin/env python3
"""The seed recipe's command, kept: it runs ``python -m asd_tools.bin.domain_specialization_ave``."""

from asd_tools.bin.domain_specialization_ave import main

if __name__ == "__main__":
    main()
