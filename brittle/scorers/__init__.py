"""Attribution scorers: each scores every training image per target (brittle/scorers/base.py:
the scores the pipeline ranks into the top-k matrix, and the signed attributions of the LDS)."""
