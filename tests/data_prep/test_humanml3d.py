"""`humanml3d` builds from the real motion 012314 (symlinked) with captions and a split list the test writes."""

import numpy as np
import pytest

from data_prep import common


def test_humanml3d_with_captions(tmp_path, shared_data, tfds_build, tfds_read):
  from data_prep.humanml3d import humanml3d_dataset_builder as b

  manual = tmp_path / "HumanML3D"
  (manual / "texts").mkdir(parents=True)
  (manual / "new_joints").symlink_to(shared_data / "real/humanml3d/new_joints")
  (manual / "texts/012314.txt").write_text(
      "a person serves a tennis ball.#a/DET person/NOUN serve/VERB a/DET tennis/NOUN "
      "ball/NOUN#0.0#0.0\n"
      "someone tosses a ball up and swings overhead.#someone/PRON toss/VERB#1.0#5.5\n")
  (manual / "test.txt").write_text("012314\n")
  tfds_build(b.Builder, tmp_path / "dd", manual)
  test = tfds_read("humanml3d", tmp_path / "dd", "test")
  ex = test["012314"]
  assert [common.text(c) for c in ex["captions"]] == [
      "a person serves a tennis ball.", "someone tosses a ball up and swings overhead."]
  np.testing.assert_allclose(ex["caption_start"], [0.0, 1.0])
  np.testing.assert_allclose(ex["caption_end"], [0.0, 5.5])
  positions, _ = common.decode(ex)
  raw = np.load(shared_data / "real/humanml3d/new_joints/012314.npy")
  assert positions.shape == (170, 1, 22, 3)
  np.testing.assert_array_equal(positions[:, 0], raw)
  (manual / "train.txt").write_text("999999\n")
  with pytest.raises(FileNotFoundError, match="999999"):
    tfds_build(b.Builder, tmp_path / "dd2", manual)
