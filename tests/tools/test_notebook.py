"""Pins skel_llm/tools/notebook.py, the helpers the colab demos call (tests/test_colabs.py runs
the notebooks themselves)."""

import numpy as np
from flax import nnx

from skel_llm import synthetic
from skel_llm.render import checkpoint, module
from skel_llm.tools import notebook


def test_sample_files_finds_one_loadable_file_per_format(shared_data):
  found = notebook.sample_files(str(shared_data))
  assert found["ntu"].endswith("real/ntu_skeleton/S001C001P001R001A001.skeleton")
  assert found["bvh"].endswith("real/bvh/131_01.bvh")  # sorted walk: the first one
  assert found["coco"].endswith("real/coco17/test_coco.json")
  # Labels, statistics and READMEs beside the samples are not skeleton files.
  assert not any(p.endswith((".md", "Mean.npy", "kinetics_val_label.json"))
                 for p in found.values())


def test_without_a_folder_the_same_synthetic_motion_comes_in_every_topology():
  records = notebook.load_samples(None, label="jump", seed=3)
  assert [r.format for r in records.values()] == list(notebook.GENERATOR_TOPOLOGIES)
  want = synthetic.generate_clip("jump", 3, topology="ntu25").positions
  np.testing.assert_array_equal(records["synthetic jump (ntu25)"].positions, want)


def test_fresh_weights_are_written_in_the_release_format(tmp_path):
  path = notebook.released_weights(str(tmp_path))  # no authors' file there
  back = checkpoint.load_released(path)
  fresh = module.DrAction("ntu25", rngs=nnx.Rngs(0)).weights()
  np.testing.assert_array_equal(back["params"]["features"], fresh["params"]["features"])


def test_grid_puts_one_clip_per_row():
  frames = np.zeros((2, 3, 4, 4, 3), np.float32)
  frames[1, 2] = 1.0  # last frame of the second clip white
  img = np.asarray(notebook.grid(frames))
  assert img.shape == (2 * 4 + 2, 3 * 4 + 2 * 2, 3)
  assert (img[6:, 12:] == 255).all() and (img[:4, :4] == 0).all()


def test_per_class_table():
  record = {"per_class": {"strict": {"squat": 0.5, "bow": 1.0}, "authors": {"squat": 0.75,
                                                                          "bow": 1.0}}}
  assert notebook.per_class_table(record).splitlines() == [
      "| class | strict | authors |", "|---|---|---|", "| squat | 50.0 | 75.0 |",
      "| bow | 100.0 | 100.0 |"]
