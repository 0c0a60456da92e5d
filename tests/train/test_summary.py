"""Pins skel_llm/train/summary.py: labelled, nearest-upscaled strips, the same in TensorBoard."""

import io
import pathlib
import struct

import numpy as np
import pytest
from PIL import Image

from skel_llm.render import frames as frames_lib
from skel_llm.train import defaults, summary, trainer

REPO = pathlib.Path(__file__).resolve().parents[2]
BG = 40  # summary._BACKGROUND


def _frames(c=2, n=3, s=8, seed=0):
  return np.random.default_rng(seed).random((c, n, s, s, 3), dtype=np.float32)


def _layout(s, n, k):
  line = summary._FONT_PX + 6
  side = s * k
  return line, side, line + side + line


def test_panels_are_nearest_upscaled_pixels_exactly():
  frames = _frames(s=8)
  img = summary.strip_image(frames, ["squat", "jump"], np.array([[1, 5, 9], [0, 2, 4]]))
  k = summary.upscale_factor(8)
  assert k == 16  # 8 px frames become 128 px panels
  line, side, row_h = _layout(8, 3, k)
  gap = summary._GAP
  assert img.shape == (2 * row_h + 3 * gap, 3 * side + 4 * gap, 3) and img.dtype == np.uint8
  expect = (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
  for i in range(2):
    for j in range(3):
      top, left = gap + i * (row_h + gap) + line, gap + j * (side + gap)
      panel = img[top:top + side, left:left + side]
      np.testing.assert_array_equal(panel[::k, ::k], expect[i, j])
      np.testing.assert_array_equal(panel, np.kron(expect[i, j], np.ones((k, k, 1), np.uint8)))


def test_class_names_and_frame_indices_are_written():
  frames = np.zeros((2, 3, 32, 32, 3), np.float32)  # black panels: any light pixel is text
  a = summary.strip_image(frames, ["squat", "jump"], np.array([[1, 5, 9], [0, 2, 4]]))
  line, side, row_h = _layout(32, 3, summary.upscale_factor(32))
  title = lambda img, i: img[2 + i * (row_h + 2):2 + i * (row_h + 2) + line]  # noqa: E731
  caption = lambda img, i: img[2 + i * (row_h + 2) + line + side:2 + (i + 1) * row_h + i * 2]  # noqa: E731
  for i in range(2):
    assert (title(a, i) > 200).any() and (caption(a, i) > 200).any()
  assert not np.array_equal(title(a, 0), title(a, 1))  # "squat" vs "jump"
  b = summary.strip_image(frames, ["squat", "jump"], np.array([[1, 5, 9], [0, 2, 7]]))
  np.testing.assert_array_equal(title(a, 1), title(b, 1))
  assert not np.array_equal(caption(a, 1), caption(b, 1))  # t=4 vs t=7 in the last panel
  np.testing.assert_array_equal(caption(a, 0), caption(b, 0))
  plain = summary.strip_image(frames)  # no names: "clip <i>", panel numbers only
  assert plain.shape == a.shape and not np.array_equal(title(plain, 0), title(a, 0))


def test_large_frames_are_not_upscaled():
  assert summary.upscale_factor(128) == 1 and summary.upscale_factor(448) == 1
  assert summary.upscale_factor(48) == 3 and summary.upscale_factor(32) == 4


def _images(workdir) -> dict[str, np.ndarray]:
  """{tag: uint8 image} of the TensorBoard events (TFRecord framing: length, crc, event, crc)."""
  from tensorboardX.proto import event_pb2
  out = {}
  for path in sorted((workdir / "tensorboard").glob("events.out.tfevents.*")):
    data, i = path.read_bytes(), 0
    while i < len(data):
      (n,) = struct.unpack("<Q", data[i:i + 8])
      event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
      i += 12 + n + 4
      for v in event.summary.value:
        if v.HasField("image"):
          out[v.tag] = np.asarray(Image.open(io.BytesIO(v.image.encoded_image_string)))
  return out


@pytest.fixture(scope="module")
def smoke_run():
  config = defaults.load_config(REPO / "configs" / "distill.py", "smoke")
  run = trainer.Run(config)
  return run, run.init_state()


def test_write_strip_png_and_tensorboard_hold_the_same_labelled_image(smoke_run, tmp_path):
  run, state = smoke_run
  writer = summary.Writer(str(tmp_path))
  image = summary.write_strip(run, state, str(tmp_path), "frames_start", writer, 0)
  writer.close()
  png = np.asarray(Image.open(tmp_path / "frames_start.png"))
  np.testing.assert_array_equal(png, image)
  np.testing.assert_array_equal(_images(tmp_path)["strips/frames_start"], image)
  # Names and indices are the clips' own: the same drawing from the pipeline's samples.
  frames = run.strip_frames(state)
  samples = [run.train_data.sample(g) for g in range(frames.shape[0])]
  names = [run.train_source.class_names[int(s["label"])] for s in samples]
  n = frames.shape[1]
  idx = [np.floor((np.arange(n) + 0.5) * int(s["num_frames"]) / n).astype(int) for s in samples]
  np.testing.assert_array_equal(
      np.asarray(frames_lib.segment_indices(np.int32(samples[0]["num_frames"]), n)), idx[0])
  np.testing.assert_array_equal(summary.strip_image(frames, names, np.stack(idx)), image)
  assert image.shape[1] >= n * summary.PANEL_PX


def test_write_strip_off_the_main_process_writes_nothing(smoke_run, tmp_path):
  run, state = smoke_run
  image = summary.write_strip(run, state, str(tmp_path), "frames_end", summary.Writer(None), 3,
                              write=False)
  assert image.ndim == 3 and list(tmp_path.iterdir()) == []
