"""Metrics, confidence intervals, agreement and MRMC analysis: pure functions."""
