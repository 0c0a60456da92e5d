"""`python -m skel_llm.tools.render`: strips and GIFs of real, reference and synthetic clips."""

import numpy as np
import pytest
from PIL import Image

from skel_llm.tools import render as render_tool

REF = "draction_reference"


def test_reference_npz_strip_matches_reference_frames(shared_data, tmp_path):
  """The strip of a reference clip equals the authors' frames to one 8-bit grey level."""
  name = "S003C001P015R001A034_01_224"
  out = str(tmp_path / "ref")
  assert render_tool.main([str(shared_data / REF / f"{name}.npz"), "--size", "224", "--columns",
                           "6", "--weights",
                           str(shared_data / REF / "draction_candidate_01.safetensors"),
                           "--out", out]) == 0
  strip = np.asarray(Image.open(out + ".png"))
  assert strip.shape == (2 * 224 + 2, 6 * 224 + 5 * 2, 3)
  theirs = render_tool.to_uint8(np.load(shared_data / REF / f"{name}.npz")["frames"])
  for i in range(12):
    r, c = divmod(i, 6)
    tile = strip[r * 226:r * 226 + 224, c * 226:c * 226 + 224].astype(int)
    assert np.abs(tile - theirs[i]).max() <= 1, i
  gif = Image.open(out + ".gif")
  assert gif.n_frames == 12 and gif.size == (224, 224)


def test_real_ntu_file_any_renderer(shared_data, tmp_path, capsys):
  path = str(shared_data / "real" / "ntu_skeleton" / "S001C001P001R001A005.skeleton")
  weights = str(shared_data / REF / "draction_candidate_03.safetensors")
  for kind in ("draction", "stick"):
    out = str(tmp_path / kind)
    render_tool.main([path, "--renderer", kind, "--size", "64", "--frames", "4", "--weights",
                      weights, "--out", out])
    img = np.asarray(Image.open(out + ".png"))
    assert img.shape == (64, 4 * 64 + 3 * 2, 3)
    assert (img[:, :64].max(-1) > 0).mean() > 0.005  # the person is drawn
  assert "ntu25, 4 frames x 64^2" in capsys.readouterr().out


def test_synthetic_and_other_topology(shared_data, tmp_path):
  out = str(tmp_path / "syn")
  render_tool.main(["synthetic:0:3", "--renderer", "velocity", "--size", "48", "--frames", "3",
                    "--out", out])
  assert np.asarray(Image.open(out + ".png")).max() > 0
  # HumanML3D (SMPL-22) with the NTU weights transferred to its layout.
  files = sorted((shared_data / "real" / "humanml3d" / "new_joints").glob("*.npy"))
  if not files:
    pytest.skip("no HumanML3D sample")
  out = str(tmp_path / "h3d")
  render_tool.main([str(files[0]), "--size", "48", "--frames", "3", "--weights",
                    str(shared_data / REF / "draction_candidate_01.safetensors"), "--out", out])
  img = np.asarray(Image.open(out + ".png"))
  assert (img.max(-1) > 0).mean() > 0.005


def test_missing_weights_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="--weights"):
    render_tool.main(["synthetic:0", "--size", "32", "--frames", "2", "--out",
                      str(tmp_path / "x")])
