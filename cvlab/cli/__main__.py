"""``python -m cvlab.cli ...``: the ``cvlab`` command without the console script."""
import sys

from . import main

sys.exit(main())
