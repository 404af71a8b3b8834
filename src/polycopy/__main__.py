"""`python -m polycopy` runs the command line."""

import sys

from polycopy.cli import main

sys.exit(main())
