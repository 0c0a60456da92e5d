"""Flax NNX InternVL3: InternViT, pixel-shuffle projector, Qwen2.5, LoRA, checkpoints."""
