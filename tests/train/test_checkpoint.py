"""Pins skel_llm/train/checkpoint.py: async saves that commit atomically, keep-N, and restores
onto another mesh (a run saved on a (2, 2, 2) mesh resumes on (8, 1, 1) or on one device).
"""

import pathlib

import jax
import numpy as np

from skel_llm.train import checkpoint, defaults, trainer

REPO = pathlib.Path(__file__).resolve().parents[2]


def _config(mesh):
  c = defaults.load_config(REPO / "configs" / "warmup.py", "smoke")
  c.data.max_len = 320
  c.mesh.update(mesh)
  return c


def test_async_keep_n_and_restore_onto_other_meshes(tmp_path):
  run = trainer.Run(_config(dict(data=2, fsdp=2, tensor=2)), devices=jax.devices()[:8])
  state = run.init_state()
  step = run.step_fn()
  ckpt = checkpoint.Checkpointer(str(tmp_path), keep=2, every_steps=2, async_save=True)
  rng = jax.random.key(0)
  saved = []
  for s in range(5):
    state, _ = step(state, run.batch_to_device(run.train_data.batch(s)), rng)
    if ckpt.save(s + 1, state, {"next_step": s + 1, "seed": 0}):
      saved.append(s + 1)
  assert saved == [2, 4]  # every_steps=2, without force
  assert ckpt.save(5, state, {"next_step": 5, "seed": 0}, force=True)
  ckpt.wait()
  assert ckpt.all_steps() == [4, 5]  # keep=2
  want = jax.tree.map(np.asarray, state)
  # A step folder that never committed (a crash mid-write) is not a checkpoint.
  (tmp_path / "6.orbax-checkpoint-tmp-123").mkdir()
  assert ckpt.latest_step() == 5
  ckpt.close()

  for mesh, devices in ((dict(data=8, fsdp=1, tensor=1), jax.devices()[:8]),
                        (dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])):
    other = trainer.Run(_config(mesh), devices=devices)
    reader = checkpoint.Checkpointer(str(tmp_path), keep=2, every_steps=2)
    got, position, at = reader.restore(other.layout.abstract)
    reader.close()
    assert at == 5 and position == {"next_step": 5, "seed": 0}
    for (path, x), sh, w in zip(jax.tree_util.tree_leaves_with_path(got),
                                jax.tree.leaves(other.layout.shardings), jax.tree.leaves(want)):
      where = jax.tree_util.keystr(path)
      assert x.sharding.is_equivalent_to(sh, x.ndim), where
      np.testing.assert_array_equal(np.asarray(x), w, err_msg=where)
