"""Procedural synthetic skeleton actions: the embedded default data (no download)."""
