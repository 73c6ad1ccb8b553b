"""The Exemplar SVM scorer (the paper's method) and its batched exact solver.

`ExemplarSVM` is re-exported here: `from brittle.scorers.esvm import ExemplarSVM`."""
from brittle.scorers.esvm.scorer import ExemplarSVM

__all__ = ["ExemplarSVM"]
