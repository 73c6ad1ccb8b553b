"""A checkout's entry point: `python run.py [group=option ...] [-m]` is the `brittle` command
(brittle/cli/app.py), with the checkout's conf/."""
from brittle.cli.app import gpu_for_job, main

__all__ = ["gpu_for_job", "main"]

if __name__ == "__main__":
    main()
