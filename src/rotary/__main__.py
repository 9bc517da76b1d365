"""`python -m rotary`: the same command as the `rotary` script."""

import sys

from rotary.server.cli import main

sys.exit(main())
