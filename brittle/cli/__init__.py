"""The command line: the Hydra job, checks of a command line before any work, `--help`, and the
OmegaConf resolvers the configs use."""
