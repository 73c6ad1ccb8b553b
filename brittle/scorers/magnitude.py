"""Readings of the paper's "inverse distance" (section 3): how a similarity scorer turns a
distance into the magnitude of its LDS attribution (`scorer.magnitude`).

The paper: "We use the inverse of decision boundary distance, to measure the magnitude of
influence. Hence, samples closest to the decision boundary have a higher influence". Its text
fixes neither what happens at or beyond the boundary (an ESVM's decision is signed: an image of
another class may lie on the target's side) nor a bound; each reading below is one the text
allows. `distance` is what the scorer measures, float [T, N]: minus the ESVM's decision value
(negative beyond the boundary), the l2 or cosine distance; +inf where none is known.

  inverse_clipped  1 / max(distance, 1e-3): the literal inverse; every image within 1e-3 of the
                   boundary or beyond it shares the largest value, 1,000
  inverse_bounded  1 / (|distance| + 1): the inverse of the unsigned distance, bounded by 1; the
                   offset 1 is the ESVM's margin (its negatives' support vectors sit at decision -1)
  rank             (N + 1 - rank) / N with ranks 1..N by ascending distance (ties: their mean
                   rank): the nearest 1, the farthest 1/N, whatever the scale of the distances
  inverse_unsigned 1 / max(distance, 1e-3) of the unsigned geometric distance: the text read
                   most literally ("distance" is never negative); for the ESVM the scorer hands
                   |decision| / ||w||, the distance to the hyperplane in feature units, so an
                   image beyond the boundary is as influential as one as near on the target's side

docs/lds.md compares them on digits (bench/lds_readings.py).
"""
from __future__ import annotations

import numpy as np

from brittle.runtime.errors import BrittleError

MAGNITUDES = ("inverse_clipped", "inverse_bounded", "rank", "inverse_unsigned")
PAPER = "inverse_clipped"   # the paper's words read literally (brittle's reading before issue 37)
CLIP = 1e-3
OFFSET = 1.0


def check_magnitude(name: str) -> str:
    """`scorer.magnitude`, checked."""
    if name not in MAGNITUDES:
        raise BrittleError(f"scorer.magnitude={name} is not valid; use one of {list(MAGNITUDES)}")
    return name


def magnitude(distance: np.ndarray, reading: str) -> np.ndarray:
    """Magnitudes float64 [T, N] of distances float [T, N] under `reading`; 0 where the distance
    is not finite (no distance known)."""
    d = np.asarray(distance, dtype=np.float64)
    known = np.isfinite(d)
    if reading in ("inverse_clipped", "inverse_unsigned"):
        out = 1.0 / np.clip(d, CLIP, None)
    elif reading == "inverse_bounded":
        out = 1.0 / (np.abs(np.where(known, d, 0.0)) + OFFSET)
    else:
        from scipy.stats import rankdata

        n = d.shape[1]
        out = (n + 1 - rankdata(np.where(known, d, np.inf), axis=1)) / n
    return np.where(known, out, 0.0)
