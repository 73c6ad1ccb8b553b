"""`python -m brittle.report [PATHS ...]`: the report of a set of runs (brittle/report/build.py)."""
import sys

from brittle.report.build import main

sys.exit(main())
