"""Evaluation beyond the support search: the Linear Datamodeling Score and the statistics over
targets (bootstrap intervals, sign tests, power analysis)."""
