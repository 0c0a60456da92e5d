"""TFDS builder `kinetics_skeleton`."""
