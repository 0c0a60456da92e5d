"""TFDS builder `synthetic_actions`."""
