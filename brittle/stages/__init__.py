"""The stages of a run, in the order brittle/pipeline.py calls them: data, reference, targets,
pretrain, embed (or models), score, lds, search, summarize. Each module declares `DEPENDS_ON`
(its slice of the config, the cache key of a cached stage) and `run(cfg, ex, ...inputs)`,
`cfg` being that slice."""
