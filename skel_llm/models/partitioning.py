"""Logical sharding constraints on activations (the weights' logical names are in `layers`).

Model code names the logical axes of its activations, e.g. the residual stream
`('activation_batch', 'activation_length', 'activation_embed')`; whoever runs the model on a
device mesh maps those names to mesh axes for the time the model is traced (the trainer:
`skel_llm.train.sharding.with_activation_sharding`, with the config's rules). Outside such a context
`constrain` returns its input unchanged, so the models run, and give the same numbers,
without any mesh.

Pinning activations matters because XLA otherwise infers their layout from the weights':
an FSDP-sharded weight `[embed, heads]` would pull the residual stream's width onto the
`fsdp` axis that already splits the batch, and the step would reshuffle activations between
devices instead of gathering the (smaller) weights.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator, Sequence

import jax

Names = tuple[str | None, ...]
# (logical names, shape) -> the sharding to pin, or None to leave the array unconstrained.
Resolver = Callable[[Names, tuple[int, ...]], "jax.sharding.Sharding | None"]

BATCH = "activation_batch"  # clips, or images of the vision tower
LENGTH = "activation_length"  # tokens, patches
EMBED = "activation_embed"  # the residual stream's width
HEADS = "activation_heads"  # attention heads (query heads; vision heads)
KV_HEADS = "activation_kv_heads"
MLP = "activation_mlp"  # MLP / projector hidden units
VOCAB = "activation_vocab"  # logits

RESIDUAL = (BATCH, LENGTH, EMBED)

_RESOLVER: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar(
    "skel_llm_activation_resolver", default=None)


@contextlib.contextmanager
def rules_context(resolver: Resolver | None) -> Iterator[None]:
  """While active, `constrain` pins activations to `resolver(names, shape)` (None: no-op)."""
  token = _RESOLVER.set(resolver)
  try:
    yield
  finally:
    _RESOLVER.reset(token)


def active() -> bool:
  """Whether a resolver is installed (constraints are being applied)."""
  return _RESOLVER.get() is not None


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
  """x with its layout pinned to the logical axis `names` (one per dimension), if rules are on.

  The constraint is an identity on values (and on gradients, whose layout it also pins).
  """
  resolver = _RESOLVER.get()
  if resolver is None:
    return x
  names = tuple(names)
  if len(names) != x.ndim:
    raise ValueError(f"constrain: {len(names)} logical axis names {names} for an array of shape "
                     f"{tuple(x.shape)}")
  sharding = resolver(names, tuple(x.shape))
  return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)
