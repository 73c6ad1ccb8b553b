"""Retraining the classifiers of counterfactual tests: archs, the seeded training loop and its
trainers, the engine that binds them to device-resident data, and the two tasks' perturbations."""
