"""Datasets and their protocols: zero-shot splits, class names, and the input pipeline."""
