"""Pins LoRA dropout in training: `config.model.lora_dropout` + `config.model.train_dropout`
make skel_llm/train/step.py run the adapters' dropout (skel_llm/models/layers.py `Linear`).

Smoke model, LoRA r 4 with dropout 0.5, projector + LoRA trainable, through `trainer.Run`. The
test batch holds clips exactly `render.num_frames` long, so the training frame selection has a
single choice and the step's only randomness left is dropout. `lora_b` starts at 0 (the adapter
adds nothing), so most checks run from a state with random `lora_b`.
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from skel_llm import models
from skel_llm.train import build, defaults, trainer

REPO = pathlib.Path(__file__).resolve().parents[2]


def _config(train_dropout=True, lora_dropout=0.5):
  c = defaults.load_config(REPO / "configs" / "refine.py", "smoke")
  c.trainable = (defaults.PROJECTOR, defaults.LORA)
  c.model.update(lora_rank=4, lora_dropout=lora_dropout, train_dropout=train_dropout)
  c.optim.warmup_fraction = 0.0  # the first step already moves the parameters
  c.total_steps = 10
  c.data.max_len = 320
  return c


def _flat(tree):
  return {jax.tree_util.keystr(p): np.asarray(v) for p, v in
          jax.tree_util.tree_leaves_with_path(tree)}


class _Setup:
  """Single-device runs with and without train_dropout, a batch and two host states."""

  def __init__(self):
    single = jax.devices()[:1]
    self.on = trainer.Run(_config(True), devices=single)
    self.off = trainer.Run(_config(False), devices=single)
    c = self.on.config
    b = dict(self.on.train_data.batch(0))
    b["num_frames"] = np.full_like(b["num_frames"], c.render.num_frames)
    self.batch = b
    self.fresh = jax.device_get(self.on.init_state())
    self.off.init_state()
    rs = np.random.default_rng(0)
    self.perturbed = dict(self.fresh, params=jax.tree_util.tree_map_with_path(
        lambda p, x: (0.05 * rs.standard_normal(x.shape)).astype(x.dtype)
        if jax.tree_util.keystr(p).endswith("['lora_b']") else x, self.fresh["params"]))
    assert any(k.endswith("['lora_b']") for k in _flat(self.fresh["params"]))

  def step(self, run, host_state, seed=0, counter=None):
    """(new host state, host metrics) of one train step of `run` from a copy of `host_state`."""
    if counter is not None:
      host_state = dict(host_state, step=np.asarray(counter, np.int32))
    # A copy: on CPU device_put may alias the numpy buffers, which the step donates.
    state = jax.device_put(jax.tree.map(np.copy, host_state), run.layout.shardings)
    new, metrics = run.step_fn()(state, run.batch_to_device(self.batch), jax.random.key(seed))
    return jax.device_get(new), {k: float(v) for k, v in jax.device_get(metrics).items()}


@pytest.fixture(scope="module")
def setup():
  return _Setup()


def _rel(a, b):
  return abs(a - b) / max(abs(a), abs(b))


def test_dropout_is_active_in_training_and_only_on_the_adapter_path(setup):
  s = setup
  # Fresh adapters (B = 0) add nothing, dropped or not: same loss; but the gradient of B
  # depends on the dropped adapter input.
  _, m_on = s.step(s.on, s.fresh)
  _, m_off = s.step(s.off, s.fresh)
  np.testing.assert_allclose(m_on["loss"], m_off["loss"], rtol=1e-6)
  assert _rel(m_on["l2_grads"], m_off["l2_grads"]) > 1e-2, (m_on, m_off)
  # With B != 0 the dropped adapter changes the loss and the update of every LoRA matrix.
  new_on, m_on = s.step(s.on, s.perturbed)
  new_off, m_off = s.step(s.off, s.perturbed)
  assert all(np.isfinite(v) for v in (*m_on.values(), *m_off.values())), (m_on, m_off)
  assert _rel(m_on["loss"], m_off["loss"]) > 1e-4, (m_on, m_off)
  assert _rel(m_on["l2_grads"], m_off["l2_grads"]) > 1e-2, (m_on, m_off)
  p_on, p_off = _flat(new_on["params"]), _flat(new_off["params"])
  lora = [k for k in p_on if "lora_" in k]
  assert lora and all(not np.array_equal(p_on[k], p_off[k]) for k in lora)
  # Without dropout nothing depends on the step rng or the step counter (frames are fixed
  # here); with dropout both draw new masks.
  losses_off = {s.step(s.off, s.perturbed, seed, counter)[1]["loss"]
                for seed, counter in ((0, 0), (1, 0), (0, 3))}
  assert losses_off == {m_off["loss"]}
  l_seed = s.step(s.on, s.perturbed, seed=1)[1]["loss"]
  l_counter = s.step(s.on, s.perturbed, counter=3)[1]["loss"]
  assert len({m_on["loss"], l_seed, l_counter}) == 3, (m_on["loss"], l_seed, l_counter)


def test_dropout_step_is_deterministic_and_a_resumed_step_draws_the_same_mask(setup):
  s = setup
  a, ma = s.step(s.on, s.perturbed)
  b, mb = s.step(s.on, s.perturbed)
  assert ma == mb
  for k, v in _flat(a).items():
    np.testing.assert_array_equal(v, _flat(b)[k], err_msg=k)
  # Two steps on, then step 2 again from the saved step-1 state: nothing carried between calls.
  c, _ = s.step(s.on, a)
  c_again, _ = s.step(s.on, a)
  assert int(c["step"]) == 2
  for k, v in _flat(c).items():
    np.testing.assert_array_equal(v, _flat(c_again)[k], err_msg=k)
  # A restarted process rebuilds the rng streams from the seed: the same keys and counts.
  streams_on, streams_off = s.on.rng_vars, s.off.rng_vars
  assert jax.tree.structure(streams_on) == jax.tree.structure(streams_off)
  keys = jax.tree.leaves(streams_on)
  assert any(jnp.issubdtype(x.dtype, jax.dtypes.prng_key) for x in keys)
  for x, y in zip(keys, jax.tree.leaves(streams_off)):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_evaluation_has_no_dropout(setup):
  s = setup
  plain = trainer.Run(_config(True, lora_dropout=0.0), devices=jax.devices()[:1])
  plain.init_state()
  # The model without dropout layers has the same variables (the layers hold only rng streams).
  assert jax.tree.structure(plain.layout.abstract) == jax.tree.structure(s.on.layout.abstract)
  batch = {k: jnp.asarray(v[:2]) for k, v in s.batch.items()}

  def eval_logits(run):
    def logits(state, batch):  # evaluation mode: midpoint frames, no dropout rng
      model = nnx.merge(run.layout.graphdef, state["params"], state["frozen"], run.rng_vars)
      return build.forward(model, batch, jax.random.key(0), False)
    fn = jax.jit(logits)
    return lambda: np.asarray(fn(jax.device_put(s.perturbed, run.layout.shardings), batch))

  # train_dropout=True changes only the train step: evaluation equals that of a model without
  # dropout layers, bitwise, every time.
  reference, logits_on = eval_logits(plain)(), eval_logits(s.on)
  np.testing.assert_array_equal(logits_on(), reference)
  np.testing.assert_array_equal(logits_on(), reference)

  # The generation path of skel_llm.eval.recognition: merged model, greedy decoding.
  frames = s.on.render_fn()(jax.device_put(s.perturbed, s.on.layout.shardings),
                            batch["positions"], batch["num_frames"])

  def generated(run):
    state = jax.device_put(s.perturbed, run.layout.shardings)
    model = nnx.merge(run.layout.graphdef, state["params"], state["frozen"], run.rng_vars)
    return np.asarray(models.generate(model.mllm, batch["input_ids"], batch["input_mask"],
                                      model.pixel_values(frames), max_new_tokens=3))

  tokens = generated(s.on)
  np.testing.assert_array_equal(generated(s.on), tokens)
  np.testing.assert_array_equal(generated(plain), tokens)


def test_sharded_dropout_step_equals_single_device(setup):
  s = setup
  c = _config(True)
  c.mesh.update(data=2, fsdp=2, tensor=2)
  run8 = trainer.Run(c, devices=jax.devices()[:8])
  run8.init_state()
  new1, m1 = s.step(s.on, s.perturbed)
  new8, m8 = s.step(run8, s.perturbed)
  _, m_off = s.step(s.off, s.perturbed)
  assert abs(m1["loss"] - m_off["loss"]) > 1e-3  # the masks matter at this tolerance
  for k in ("loss", "l2_grads", "l2_updates", "accuracy"):
    np.testing.assert_allclose(m8[k], m1[k], rtol=1e-5, atol=1e-5, err_msg=k)
  p1, p8 = _flat(new1["params"]), _flat(new8["params"])
  for k, v in p1.items():
    np.testing.assert_allclose(p8[k], v, rtol=1e-5, atol=1e-5, err_msg=k)
