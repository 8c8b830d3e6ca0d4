"""`python -m lab up|down|status|supervise` (see lab.cli)."""

import sys

from lab.cli import main

sys.exit(main())
