"""skel_llm: SkeletonLLM in JAX/Flax.

Data flows one way: raw files -> `skeleton` (normalised arrays) -> `render`
(DrAction frames) -> `models` (InternVL3) -> `train` / `eval`.
"""
