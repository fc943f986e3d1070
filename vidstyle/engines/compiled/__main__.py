"""The background builder's entry point: ``python -m vidstyle.engines.compiled JOB ENTRY``."""

import sys

from vidstyle.engines.compiled.builder import main

sys.exit(main())
