"""TFDS builder `humanml3d`."""
