"""The Exemplar SVM scorer (the paper's method) and its batched exact solver.

`ExemplarSVM` is re-exported here, imported on first use (`from brittle.scorers.esvm import
ExemplarSVM`), so that reading this package's option files costs no torch import."""
from __future__ import annotations

from typing import Any

__all__ = ["ExemplarSVM"]


def __getattr__(name: str) -> Any:
    if name == "ExemplarSVM":
        from brittle.scorers.esvm.scorer import ExemplarSVM
        return ExemplarSVM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
