"""Pins `step.chunked_answer_loss`: the whole-logits `answer_loss`, chunk by chunk."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skel_llm.train import step as step_lib


@pytest.mark.parametrize("chunk", [1, 4, 7, 64])
def test_chunked_loss_and_gradients_equal_whole_logits(chunk):
  k = jax.random.split(jax.random.key(0), 4)
  b, n, d, v = 3, 12, 8, 50
  hidden = jax.random.normal(k[0], (b, n, d))
  w = jax.random.normal(k[1], (d, v))
  ids = jax.random.randint(k[2], (b, n), 0, v)
  mask = (jax.random.uniform(k[3], (b, n)) < 0.5).astype(jnp.float32)

  def whole(h, w):
    return step_lib.answer_loss(jnp.einsum("bld,dv->blv", h, w), ids, mask)

  def chunked(h, w):
    return step_lib.chunked_answer_loss(lambda x: jnp.einsum("bld,dv->blv", x, w), h, ids,
                                        mask, chunk)

  with jax.default_matmul_precision("highest"):
    (l0, a0), g0 = jax.value_and_grad(whole, argnums=(0, 1), has_aux=True)(hidden, w)
    (l1, a1), g1 = jax.value_and_grad(chunked, argnums=(0, 1), has_aux=True)(hidden, w)
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  assert float(a1["answer_tokens"]) == float(a0["answer_tokens"]) == float(mask[:, 1:].sum())
  np.testing.assert_allclose(a1["accuracy"], a0["accuracy"], rtol=1e-6)
  for x, y in zip(g1, g0):
    np.testing.assert_allclose(x, y, atol=1e-6, rtol=1e-5)


def test_chunked_loss_needs_hidden_forward():
  with pytest.raises(ValueError, match="loss_chunk needs forward_hidden"):
    step_lib.make_train_step(None, None, None, None, loss_chunk=16)
