"""`python -m brittle ...`: the brittle command (brittle/cli/app.py)."""
from brittle.cli.app import main

main()
