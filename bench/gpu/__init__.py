"""The GPU check's parts (bench/gpu_check.py runs them): common.py (context, config, command
lines), records.py (what a run directory says of its stages), parts.py (the list, with estimates
and limits), runner.py (budget, one child process a part, the results file), and the parts
themselves: commands.py (what users type), recipes.py, floors.py, compare_airbench.py,
esvm_vs_random.py."""
