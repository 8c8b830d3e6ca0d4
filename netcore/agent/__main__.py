"""`python -m netcore.agent --url ws://HOST:PORT/ws/agent/ --token TOKEN`."""

import sys

from netcore.agent.cli import main

sys.exit(main())
