"""``python -m gpuboot``."""

import sys

from .cli import main

sys.exit(main())
