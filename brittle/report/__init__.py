"""From finished run directories to tables, figures and report.md (`python -m brittle.report`)."""
