"""Stick-figure drawing of skeleton files."""

import numpy as np
from PIL import Image

from skel_llm import skeleton
from skel_llm.tools import show


def test_coco_figure_keeps_the_image_geometry(shared_data):
  rec = skeleton.load(shared_data / "real/coco17/test_coco.json")
  px = show.pixel_coords(rec, size=200)
  ok = rec.valid > 0
  kp = rec.positions[..., :2][ok].astype(np.float64)
  # One uniform scale and offset for both axes, same orientation as the photo (y down).
  a = np.c_[kp, np.ones(len(kp))]
  scales = []
  for axis in (0, 1):
    coef, *_ = np.linalg.lstsq(a, px[ok][:, axis], rcond=None)
    np.testing.assert_allclose(a @ coef, px[ok][:, axis], atol=1e-9)
    assert coef[axis] > 0 and abs(coef[1 - axis]) < 1e-12
    scales.append(coef[axis])
  assert np.isclose(scales[0], scales[1])
  assert px[ok].min() >= 0 and px[ok].max() <= 200


def test_png_strip_draws_each_joint_in_its_side_colour(shared_data, tmp_path):
  rec = skeleton.load(shared_data / "real/ntu_skeleton/S001C001P001R001A001.skeleton")
  out = show.render(rec, str(tmp_path / "a001.png"), frames=4, size=128)
  img = np.asarray(Image.open(out).convert("RGB")).astype(int)
  assert img.shape == (128, 4 * 128, 3)
  frames = skeleton.sampling.segment_indices(rec.num_frames, 4)
  px = show.pixel_coords(rec, size=128)
  topo = rec.topology
  for k, t in enumerate(frames):
    for name, colour in (("right_knee", (220, 50, 40)), ("left_knee", (40, 90, 220))):
      x, y = px[t, 0, topo.index(name)]
      patch = img[int(round(y)) - 1:int(round(y)) + 2, k * 128 + int(round(x)) - 1:
                  k * 128 + int(round(x)) + 2].reshape(-1, 3)
      assert (np.abs(patch - colour).sum(axis=1) < 30).any(), (t, name)
  # Nothing is drawn outside the figures' bounding boxes (white background elsewhere).
  assert (img[0:8, 40:128] == 255).all()


def test_gif_has_one_frame_per_clip_frame_and_cli_runs(shared_data, tmp_path):
  path = shared_data / "real/ntu_skeleton/S001C001P001R001A005.skeleton"
  out = tmp_path / "a005.gif"
  show.main([str(path), "-o", str(out), "--size", "64"])
  gif = Image.open(out)
  # 30 fps; GIF stores frame durations in whole centiseconds.
  assert gif.n_frames == 54 and abs(gif.info["duration"] - 1000 / 30) <= 10


def test_synthetic_clip_option(tmp_path):
  out = tmp_path / "wave.png"
  show.main(["--synthetic", "wave right hand", "--seed", "0", "-o", str(out), "--frames", "3",
             "--size", "64"])
  img = np.asarray(Image.open(out).convert("RGB"))
  assert img.shape == (64, 192, 3) and (img != 255).any()
