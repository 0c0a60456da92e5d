"""TFDS builder `ntu_rgbd`."""
