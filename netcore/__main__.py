"""Entry point for `python -m netcore`."""

import sys

from netcore.cli import main

sys.exit(main())
