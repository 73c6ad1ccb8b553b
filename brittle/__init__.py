"""brittle: data brittleness estimates from one self-supervised model, checked by retraining."""

__version__ = "0.1.0"

# Bumped whenever a cached artifact's format or the code producing it changes meaning;
# it is part of every cache key, so stale artifacts are never reused.
CACHE_SCHEMA = 3  # 3: code named by stable names (brittle/runtime/names.py), not import paths
