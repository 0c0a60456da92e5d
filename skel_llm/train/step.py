"""The pure train step: `train_step(state, batch, rng) -> (state, metrics)`.

State (a plain pytree of arrays, see `skel_llm.train.state`):
  step       int32[]
  params     the trainable variables (pure dict; the stage's regex rules chose them)
  frozen     every other model variable, never updated (no optimizer state)
  opt_state  optax state of `params` only

The step merges the NNX graph once per call inside jit (`nnx.merge`), takes
`jax.value_and_grad` over `params` only, and returns the new state and the
metrics `loss`, `accuracy` (answer tokens), `l2_grads`, `l2_params`,
`l2_updates`, `lr`, `answer_tokens`, and the forward's own statistics (the
composed model's `render_overflow`, `skel_llm.train.model.render_stats`). The rng of a step is `fold_in(rng, step)`,
so a resumed run draws exactly what the uninterrupted one drew.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

# (model, batch, rng, training) -> (logits float32[B, L, V], {name: scalar}).
Forward = Callable[[nnx.Module, dict, jax.Array, bool], tuple[jax.Array, dict]]


def l2_norm(tree: Any) -> jax.Array:
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.zeros((), jnp.float32)
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def answer_loss(logits: jax.Array, input_ids: jax.Array, loss_mask: jax.Array
                ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean next-token cross-entropy over the answer tokens of the whole batch.

  Args:
    logits: float32[B, L, V]; position t predicts token t + 1.
    input_ids: int32[B, L].
    loss_mask: float32[B, L], 1 where token t belongs to the answer.

  Returns:
    (loss, {'accuracy', 'answer_tokens'}).
  """
  logits = logits[:, :-1].astype(jnp.float32)
  targets = input_ids[:, 1:]
  mask = loss_mask[:, 1:].astype(jnp.float32)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  count = jnp.sum(mask)
  denom = jnp.maximum(count, 1.0)
  loss = jnp.sum(ce * mask) / denom
  hits = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return loss, {"accuracy": jnp.sum(hits * mask) / denom, "answer_tokens": count}


def chunked_answer_loss(logits_fn: Callable[[jax.Array], jax.Array], hidden: jax.Array,
                        input_ids: jax.Array, loss_mask: jax.Array, chunk: int
                        ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`answer_loss` without ever holding the whole float32[B, L, V] logits.

  The L - 1 predicting positions are cut in chunks of `chunk` tokens (the last padded and
  masked); a `lax.scan` computes each chunk's logits, cross-entropy and hits and adds them
  up, rematerialised, so forward and backward hold one chunk's logits at a time.

  Args:
    logits_fn: float[B, C, D] -> float32[B, C, V] (the model's output projection).
    hidden: float[B, L, D] final hidden states.
    input_ids: int32[B, L].
    loss_mask: float32[B, L].
    chunk: tokens per chunk.
  """
  b, n = input_ids.shape
  h, targets = hidden[:, :-1], input_ids[:, 1:]
  mask = loss_mask[:, 1:].astype(jnp.float32)
  pad = (-(n - 1)) % chunk
  if pad:
    h = jnp.pad(h, ((0, 0), (0, pad), (0, 0)))
    targets = jnp.pad(targets, ((0, 0), (0, pad)))
    mask = jnp.pad(mask, ((0, 0), (0, pad)))
  c = h.shape[1] // chunk
  split = lambda x: jnp.moveaxis(x.reshape(b, c, chunk, *x.shape[2:]), 1, 0)  # noqa: E731

  @jax.checkpoint
  def body(carry, xs):
    hc, tc, mc = xs
    logits = logits_fn(hc).astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, tc)
    hits = (jnp.argmax(logits, axis=-1) == tc).astype(jnp.float32)
    return (carry[0] + jnp.sum(ce * mc), carry[1] + jnp.sum(hits * mc)), None
  zero = jnp.zeros((), jnp.float32)
  (ce_sum, hit_sum), _ = jax.lax.scan(body, (zero, zero), (split(h), split(targets), split(mask)))
  count = jnp.sum(mask)
  denom = jnp.maximum(count, 1.0)
  return ce_sum / denom, {"accuracy": hit_sum / denom, "answer_tokens": count}


def make_train_step(graphdef: nnx.GraphDef, rng_vars: Any, tx: optax.GradientTransformation,
                    forward: Forward, schedule: optax.Schedule | None = None,
                    dropout: bool = False, forward_hidden: Callable | None = None,
                    loss_chunk: int = 0) -> Callable[[dict, dict, jax.Array], tuple[dict, dict]]:
  """Builds the pure step for one model graph and optimizer.

  Args:
    graphdef: the static graph of the composed model (`nnx.split`).
    rng_vars: the model's rng-stream variables (dropout), constant; reseeded per step.
    tx: the optax transformation for `state['params']`.
    forward: `forward(model, batch, rng, training) -> (logits float32[B, L, V], stats)`,
      stats a dict of scalars reported as metrics (`{}` for none).
    schedule: learning-rate schedule, only to report `lr`.
    dropout: run dropout layers (LoRA dropout) in training mode.
    forward_hidden: `(model, batch, rng, training) -> (hidden, logits_fn, stats)`, needed
      with `loss_chunk`.
    loss_chunk: > 0: the loss is taken `chunk` tokens at a time (`chunked_answer_loss`).
  """
  if loss_chunk and forward_hidden is None:
    raise ValueError("make_train_step: loss_chunk needs forward_hidden")

  def train_step(state: dict, batch: dict, rng: jax.Array) -> tuple[dict, dict]:
    step = state["step"]
    rng = jax.random.fold_in(rng, step)
    k_data, k_drop = jax.random.split(rng)

    def loss_fn(params):
      model = nnx.merge(graphdef, params, state["frozen"], rng_vars)
      if dropout:
        # match_shape: stacked (scanned) layers hold one stream per layer.
        nnx.reseed(model, dropout=k_drop, policy="match_shape")
        model.set_attributes(deterministic=False, raise_if_not_found=False)
      if loss_chunk:
        hidden, logits_fn, stats = forward_hidden(model, batch, k_data, True)
        loss, aux = chunked_answer_loss(logits_fn, hidden, batch["input_ids"],
                                        batch["loss_mask"], loss_chunk)
      else:
        logits, stats = forward(model, batch, k_data, True)
        loss, aux = answer_loss(logits, batch["input_ids"], batch["loss_mask"])
      return loss, {**aux, **stats}

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {"loss": loss, **aux, "l2_grads": l2_norm(grads), "l2_params": l2_norm(params),
               "l2_updates": l2_norm(updates)}
    if schedule is not None:
      metrics["lr"] = jnp.asarray(schedule(step), jnp.float32)
    new_state = {"step": step + 1, "params": params, "frozen": state["frozen"],
                 "opt_state": opt_state}
    return new_state, metrics

  return train_step
