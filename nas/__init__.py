"""The shared core of the toolkit: spaces, data, training, estimators, strategies, results."""
