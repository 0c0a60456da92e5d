"""Pins colabs/: every notebook's .ipynb is its jupytext .py without outputs, opens in Colab,
installs the project there, and runs top to bottom with a small-parameters cell.

The executed notebooks must print what they promise: quickstart one sample per format of the
sample folder (or the synthetic clips), its renders and a renderer gradient that its own
finite-difference check accepts; train_and_ask a trained run's answers; evaluate that run's
evaluation table; formats_and_transfer one renderer shared by five topologies. A cell that
raises fails the test with the notebook's traceback.
"""

import base64
import io
import pathlib

import jupytext
import nbclient
import nbformat
import pytest
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
COLABS = REPO / "colabs"
NOTEBOOKS = ("quickstart", "train_and_ask", "evaluate", "formats_and_transfer")


def _cells(nb):
  return [(c.cell_type, c.source) for c in nb.cells]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_ipynb_is_the_py_source_without_outputs(name):
  source = jupytext.read(COLABS / f"{name}.py")
  stored = nbformat.read(COLABS / f"{name}.ipynb", as_version=4)
  assert _cells(stored) == _cells(source), f"run: jupytext --sync colabs/{name}.py"
  for cell in stored.cells:
    if cell.cell_type == "code":
      assert cell.outputs == [] and cell.execution_count is None, f"{name}: clear the outputs"
  link = f"colab.research.google.com/github/skel-llm/skel_llm/blob/main/colabs/{name}.ipynb"
  assert link in stored.cells[0].source
  assert '"google.colab" in sys.modules' in stored.cells[1].source
  assert "pip\", \"install\"" in stored.cells[1].source
  params = [c for c in stored.cells if "parameters" in c.metadata.get("tags", [])]
  assert len(params) == 1, f"{name}: one cell tagged 'parameters'"


def execute(name: str, monkeypatch, **params) -> nbformat.NotebookNode:
  """The notebook run top to bottom in a fresh kernel, `params` set after its parameters cell."""
  nb = jupytext.read(COLABS / f"{name}.py")
  cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
  cell.source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
  # The kernel is one CPU device, as on a laptop or Colab (not the tests' 8 simulated ones).
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(REPO)}}).execute()
  return nb


def text(nb) -> str:
  return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs if o.output_type == "stream")


def images(nb) -> list[Image.Image]:
  return [Image.open(io.BytesIO(base64.b64decode(o.data["image/png"])))
          for c in nb.cells if c.cell_type == "code" for o in c.outputs
          if o.output_type in ("display_data", "execute_result") and "image/png" in o.data]


def test_quickstart_runs_on_the_sample_folder(monkeypatch, shared_data):
  nb = execute("quickstart", monkeypatch, DATA_DIR=str(shared_data), FRAMES=4, IMAGE_SIZE=48)
  out = text(nb)
  for fmt in ("ntu: S001C001P001R001A001.skeleton", "bvh:", "coco:", "humanml3d:", "kinetics:"):
    assert fmt in out, out[-3000:]
  assert "draction_candidate_01.safetensors" in out
  assert "poses_finite_difference" in out
  assert len(images(nb)) >= 16  # a drawing and a render per format


def test_formats_and_transfer_renders_one_action_in_every_topology(monkeypatch, shared_data):
  nb = execute("formats_and_transfer", monkeypatch, DATA_DIR=str(shared_data), FRAMES=4,
               IMAGE_SIZE=48)
  out = text(nb)
  for topo in ("ntu25", "kinect20", "smpl22", "coco17", "bvh: 131_01.bvh"):
    assert topo in out, out[-3000:]
  assert out.count("appearance MLP shared with NTU-25: True") == 6
  grid = images(nb)[-1]
  assert grid.size == (4 * 48 + 3 * 2, 6 * 48 + 5 * 2)  # 4 frames x 6 topologies


@pytest.fixture(scope="module")
def trained_notebook(tmp_path_factory):
  monkeypatch = pytest.MonkeyPatch()
  workdir = tmp_path_factory.mktemp("train_and_ask")
  try:
    nb = execute("train_and_ask", monkeypatch, WORKDIR=str(workdir), PRESET="smoke", STEPS=4,
                 MAX_NEW_TOKENS=8)
  finally:
    monkeypatch.undo()
  return nb, workdir


def test_train_and_ask_trains_and_answers(trained_notebook):
  nb, workdir = trained_notebook
  assert (workdir / "frames_end.png").is_file() and (workdir / "result.json").is_file()
  out = text(nb)
  assert out.count("synthetic ") >= 6 and "synthetic clips named right" in out, out[-3000:]


def test_evaluate_runs_the_evaluators_on_that_run(trained_notebook, monkeypatch):
  _, workdir = trained_notebook
  nb = execute("evaluate", monkeypatch, WORKDIR=str(workdir), PRESET="smoke", STEPS=4)
  assert "step 4 of" in text(nb)
  assert (workdir / "evaluate" / "heldout.json").is_file()
  md = "".join(o.data.get("text/markdown", "") for c in nb.cells if c.cell_type == "code"
               for o in c.outputs if o.output_type == "display_data")
  assert "| heldout |" in md and "| class |" in md
