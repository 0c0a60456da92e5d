"""Training: the pure sharded train step, optimiser, checkpoints and the trainer loop."""
