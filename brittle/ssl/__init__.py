"""The self-supervised backbone: networks, release checkpoints, SSL methods (lightly's heads and
losses in Lightning modules), batched views, the fit, and feature extraction."""
