"""``python -m cellops.cli``."""

import sys

from . import main

sys.exit(main())
