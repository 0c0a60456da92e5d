"""DrAction: the differentiable Gaussian-splatting skeleton renderer."""
