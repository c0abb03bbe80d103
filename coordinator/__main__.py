"""``python -m coordinator`` is the ``assay`` command, for checkouts without the script."""

import sys

from coordinator.cli import main

sys.exit(main())
