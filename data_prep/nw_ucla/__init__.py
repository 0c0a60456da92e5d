"""TFDS builder `nw_ucla`."""
