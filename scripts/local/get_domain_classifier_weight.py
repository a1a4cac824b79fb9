#!/usr/bin/env python3
"""The seed recipe's command, kept: it runs ``python -m asd_tools.bin.get_domain_classifier_weight``."""

from asd_tools.bin.get_domain_classifier_weight import main

if __name__ == "__main__":
    main()
