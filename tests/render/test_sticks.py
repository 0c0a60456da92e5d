"""Pins skel_llm/render/sticks.py: the generic stick-figure family the embedded MLLM is
pretrained on, against hand-computed pixels and DrAction's frame selection."""

import numpy as np
import pytest

from skel_llm.render import frames as frames_lib, sticks
from skel_llm.synthetic import generate_clip


def _one_bone_style(width=1.0):
  return sticks.StickStyle(
      background=np.full((2, 3), 0.2, np.float32), bone_colours=np.ones((24, 3), np.float32),
      width=width, dot_radius=0.0, dot_colour=np.zeros(3, np.float32), yaw_deg=0.0, scale=0.8,
      shift=np.zeros(2, np.float32))


def test_a_horizontal_bone_covers_the_pixels_it_passes_by_hand():
  # Only bone (0, 1) of NTU-25 has both joints: spine base at x 0, spine middle at x 1, y 0.
  # Fit: extent 1 m -> 0.8 x 20 px; u from 2 to 18, v = 10. Pixel centres (i + 0.5): rows 9
  # and 10 lie 0.5 px from the line, so a 1 px line covers each by 0.5; row 2 is background.
  pos = np.zeros((4, 1, 25, 3), np.float32)
  pos[:, 0, 0] = (0.0, 0.0, 3.0)
  pos[:, 0, 1] = (1.0, 0.0, 3.0)
  img = sticks.render(pos, _one_bone_style(), num_frames=2, image_size=20)
  assert img.shape == (2, 20, 20, 3) and img.dtype == np.float32
  np.testing.assert_allclose(img[0, 9, 10], 0.5 * 1.0 + 0.5 * 0.2, atol=1e-6)
  np.testing.assert_allclose(img[0, 10, 10], 0.5 * 1.0 + 0.5 * 0.2, atol=1e-6)
  np.testing.assert_allclose(img[0, 2, 10], 0.2, atol=1e-6)
  np.testing.assert_allclose(img[0, 9, 0], 0.2, atol=1e-6)  # left of the bone's end at u 2
  # Yaw 90 degrees turns the bone towards the camera: it collapses onto one column.
  style = sticks.StickStyle(**{**_one_bone_style().__dict__, "yaw_deg": 90.0})
  turned = sticks.render(pos, style, num_frames=1, image_size=20)
  assert np.count_nonzero(np.abs(turned[0] - 0.2).sum(-1) > 1e-3) < 8


def test_frames_are_drawn_at_drawactions_evaluation_indices():
  for length, n in ((48, 6), (37, 6), (5, 6), (1, 4)):
    ref = np.asarray(frames_lib.segment_indices(length, n, None))
    np.testing.assert_array_equal(sticks.frame_indices(length, n), ref)
  # A bone that grows with the frame number: frame k of the picture ends where the clip's
  # frame frame_indices[k] puts the moving joint.
  pos = np.zeros((48, 1, 25, 3), np.float32)
  pos[:, 0, 0] = (0.0, 0.0, 3.0)
  pos[:, 0, 1, 0] = np.linspace(0.2, 1.0, 48)
  pos[:, 0, 1, 2] = 3.0
  style = _one_bone_style()
  img = sticks.render(pos, style, num_frames=6, image_size=32)
  uv = sticks.project(pos, style, 32)
  for k, t in enumerate(sticks.frame_indices(48, 6)):
    lit = np.flatnonzero(np.abs(img[k].sum(-1) - 0.6).max(0) > 0.3)
    assert abs(lit.max() + 0.5 - uv[t, 0, 1, 0]) <= 1.0, (k, lit.max(), uv[t, 0, 1, 0])


def test_styles_vary_are_seeded_and_keep_the_figure_visible():
  styles = [sticks.draw_style((1, g)) for g in range(40)]
  assert len({s.width for s in styles}) == 40
  assert len({tuple(s.background[0]) for s in styles}) == 40
  assert {s.dot_radius == 0 for s in styles} == {True, False}
  assert min(s.yaw_deg for s in styles) < -30 and max(s.yaw_deg for s in styles) > 30
  for s in styles:  # every line colour differs in brightness from the background
    assert np.all(np.abs(s.bone_colours.mean(-1) - s.background.mean()) >= 0.35)
  again = sticks.draw_style((1, 7))
  np.testing.assert_array_equal(again.bone_colours, styles[7].bone_colours)
  rec = generate_clip("squat", 3)
  a = sticks.render(rec.positions, styles[0], num_frames=6, image_size=32)
  b = sticks.render(rec.positions, styles[1], num_frames=6, image_size=32)
  assert a.min() >= 0 and a.max() <= 1 and np.abs(a - b).mean() > 0.05


def test_plain_style_is_black_one_bright_colour_frontal_and_keeps_the_geometry():
  drawn = sticks.draw_style((1, 5))
  plain = sticks.plain_style(drawn)
  assert np.all(plain.background == 0) and plain.dot_radius == 0 and plain.yaw_deg == 0
  assert np.all(plain.bone_colours == plain.bone_colours[:1])
  assert plain.bone_colours.max() == pytest.approx(1.0)
  np.testing.assert_allclose(plain.bone_colours[0] * drawn.bone_colours[0].max(),
                             drawn.bone_colours[0], rtol=1e-6)
  assert (plain.width, plain.scale) == (drawn.width, drawn.scale)
  np.testing.assert_array_equal(plain.shift, drawn.shift)
  img = sticks.render(generate_clip("squat", 3).positions, plain, num_frames=2, image_size=32)
  assert img.min() == 0 and img.max() > 0.9  # black picture, the figure at full brightness


def test_bad_positions_are_refused():
  with pytest.raises(ValueError, match=r"float32\[T, P, 25, 3\]"):
    sticks.render(np.zeros((4, 1, 20, 3)), _one_bone_style(), num_frames=2, image_size=8)
  with pytest.raises(ValueError, match="no joint positions"):
    sticks.render(np.zeros((4, 1, 25, 3)), _one_bone_style(), num_frames=2, image_size=8)
