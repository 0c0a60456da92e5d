"""AdamW with warm-up + cosine decay, weight decay and global-norm clipping.

The optimizer only ever sees the trainable subset of the parameters (chosen by
the stage's regex rules in `skel_llm.train.state`), so frozen parameters carry
no optimizer state at all. Paper settings (docs/method.md §4): AdamW
(0.9, 0.999, eps 1e-8), lr 2e-5, weight decay 0.05, cosine, 3 % warm-up.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import optax


def make_schedule(cfg: Mapping[str, Any], total_steps: int) -> optax.Schedule:
  """Learning rate per step: linear warm-up from 0, then cosine down to `lr * end_fraction`."""
  name = cfg.get("schedule", "warmup_cosine")
  lr = float(cfg["lr"])
  if total_steps <= 0:
    raise ValueError(f"total_steps must be positive, got {total_steps}")
  warmup = int(round(float(cfg.get("warmup_fraction", 0.03)) * total_steps))
  if name == "constant":
    return optax.constant_schedule(lr)
  if name != "warmup_cosine":
    raise ValueError(f"config.optim.schedule {name!r} is unknown; use 'warmup_cosine' or "
                     f"'constant'")
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=lr, warmup_steps=warmup, decay_steps=max(total_steps, warmup + 1),
      end_value=lr * float(cfg.get("end_fraction", 0.0)))


def _decay_mask(params: Any) -> Any:
  # Matrices decay; biases, norm scales and 0/1-d renderer scalars (depth-mix logit) do not,
  # as in the Hugging Face Trainer the authors fine-tuned with.
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(cfg: Mapping[str, Any], total_steps: int) -> optax.GradientTransformation:
  """The optax chain for `config.optim`."""
  schedule = make_schedule(cfg, total_steps)
  parts = []
  clip = cfg.get("grad_clip_norm", 1.0)
  if clip:
    parts.append(optax.clip_by_global_norm(float(clip)))
  parts.append(optax.adamw(schedule, b1=float(cfg.get("b1", 0.9)), b2=float(cfg.get("b2", 0.999)),
                           eps=float(cfg.get("eps", 1e-8)),
                           weight_decay=float(cfg.get("weight_decay", 0.05)), mask=_decay_mask))
  return optax.chain(*parts)
