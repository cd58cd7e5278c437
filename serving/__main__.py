"""`python -m serving ...`: the server without the `keras-meta` command (and its imports)."""

import sys

from serving.cli import main

sys.exit(main())
