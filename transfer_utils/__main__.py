"""``python -m transfer_utils``: see ``transfer_utils.cli``."""

import sys

from transfer_utils.cli import main

sys.exit(main())
