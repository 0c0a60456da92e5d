"""TFDS builder `pku_mmd`."""
