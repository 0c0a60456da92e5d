"""Command-line tools: drawing skeletons and renders."""
