"""brittle: data brittleness estimates from one self-supervised model, checked by retraining."""

__version__ = "0.1.0"

# Bumped whenever a cached artifact's format or the code producing it changes meaning;
# it is part of every cache key, so stale artifacts are never reused.
# 4: one word per concept (pool, names, slices; docs/design.md), every setting written in its YAML
CACHE_SCHEMA = 4
