"""`python3 -m netcore.agent --url ws://HOST:PORT/ws/agent/ --token-file FILE`."""

import sys

from netcore.agent.cli import main

sys.exit(main())
