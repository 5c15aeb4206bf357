"""``python -m sktorch_auto``: the command line (see :mod:`sktorch_auto.cli`)."""

import sys

from .cli import main

sys.exit(main())
