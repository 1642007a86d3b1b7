"""Models, training, cross-validation and prediction."""
