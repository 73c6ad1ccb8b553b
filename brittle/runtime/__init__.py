"""Where and how a run executes: device and settings, atomic files, the stage cache, stable
names of config targets, seed streams, progress, costs and the one user-error type."""
