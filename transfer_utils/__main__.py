"""``python -m transfer_utils``: see ``transfer_utils.course.cli``."""

import sys

from transfer_utils.course.cli import main

sys.exit(main())
