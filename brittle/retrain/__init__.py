"""Retraining the classifiers of counterfactual tests: archs, the seeded training loop and its
trainers, and the engine that binds them to device-resident data (the tasks that perturb the
training set live in brittle/counterfactual/tasks.py)."""
