"""Seed streams: every model brittle trains gets its seed from (run seed, stream, index...).

A counterfactual test's models are seeded by (run seed, target, k, replicate); every other
purpose has a stream number of its own, so reference models, subset banks, a scorer's models
and the target draw are independent of each other and of every test. The numbers are part of
what a cached model is: changing one changes every model of that purpose (bump CACHE_SCHEMA).
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """The seed stream of each purpose (the first part after the run seed)."""
    TARGETS = 17               # the balanced draw of targets (with the targets' own seed)
    REFERENCE = 7_000_001      # full-data reference models: eligibility and flip classes
    DATAMODELS = 9_000_017     # the subset bank that datamodels are fitted on
    LDS = 9_000_029            # the subset bank the LDS evaluates on (never a fitted one)
    TRAK = 11_000_003          # TRAK's own models
    GRADCOS = 13_000_001       # Grad-Cos's model
    DATTRI = 15_000_011        # the models dattri's attributors read
    # the one seeded run of MAGIC's single-model setting: MAGIC's first model, and the seed of
    # every model of the same-order LDS bank (brittle/retrain/weighted.py)
    SINGLE_RUN = 17_000_023
    MAGIC = 17_000_041         # MAGIC's further models (its second seed on)
    LDS_SAME_ORDER = 9_000_041  # the same-order LDS bank's subsets (never the 'lds' bank's)
    # the checks of a support found (brittle/counterfactual/checks.py): fresh models, never a
    # search model's seed (the search's are (run seed, target, k, replicate))
    VERIFY = 19_000_003         # the found prefix tested again
    REFINE = 19_000_019         # a refinement's candidate sets
    REFINE_VERIFY = 19_000_031  # an accepted candidate tested again


def stream(purpose: str) -> Stream:
    """The stream of a purpose name as configs and cache keys spell it ('lds', 'trak', ...)."""
    return Stream[purpose.upper()]


def model_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts; independent streams for distinct part tuples."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def single_run_seed(seed: int) -> int:
    """The seed of the run's single model (MAGIC's single-model setting): MAGIC's first model,
    and every model of the same-order LDS bank."""
    return model_seed(seed, Stream.SINGLE_RUN)
