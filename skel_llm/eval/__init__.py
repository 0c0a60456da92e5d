"""Evaluation: open-vocabulary recognition and answer scoring."""
