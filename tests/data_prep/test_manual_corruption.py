"""A corrupted file in a builder's manual folder fails the build naming that file (issue 12).

For each TFDS builder, hypothesis mutates one file of a manual folder made of the real
samples (NW-UCLA: written fixtures, no real sample exists) with the mutations of
tests/skeleton/mutations.py: the sample files themselves and the lists and label files next
to them. Invariant: the build raises a SkeletonFormatError / ValueError / FileNotFoundError
whose message names the mutated file, or it succeeds with every sample the folder holds
(minus only those on the explicit, counted skip lists: NTU's missing-skeleton list); never
another exception, never a silently short split. Mutations that leave a well-formed file
(e.g. a changed digit in a coordinate, a swapped PKU-MMD frame line, a label file entry of
another clip) are the valid builds counted in the printed tally.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import importlib.util
import json
import os
import pathlib
import shutil
import signal
import sys
import tempfile
from typing import Callable

import hypothesis
import numpy as np
import pytest
import tensorflow_datasets as tfds
from hypothesis import strategies as st

from skel_llm.skeleton import SkeletonFormatError, ntu, pku_mmd

BUILD_TIME_LIMIT_S = 120  # a real build of these folders takes 1-5 s


def _mutations():
  name = "skel_llm_test_mutations"
  if name not in sys.modules:
    spec = importlib.util.spec_from_file_location(
        name, pathlib.Path(__file__).resolve().parents[1] / "skeleton/mutations.py")
    sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[name])
  return sys.modules[name]


M = _mutations()


@dataclasses.dataclass
class Manual:
  module: str  # data_prep.<name>.<name>_dataset_builder
  config: str | None
  root: pathlib.Path
  files: list[tuple[str, str]]  # (path relative to root, mutation kind)
  expected: Callable[[pathlib.Path], int]  # examples a successful build must hold


def _copy(src: pathlib.Path, dst: pathlib.Path) -> None:
  dst.parent.mkdir(parents=True, exist_ok=True)
  shutil.copyfile(src, dst)


def _ntu(real: pathlib.Path, root: pathlib.Path) -> Manual:
  for f in sorted((real / "ntu_skeleton").glob("*.skeleton")):
    _copy(f, root / f.name)
  _copy(real / "ntu_skeleton/NTU_RGBD_samples_with_missing_skeletons.txt",
        root / "NTU_RGBD_samples_with_missing_skeletons.txt")
  names = [f.name for f in sorted(root.glob("*.skeleton"))]

  def expected(r):
    listed = ntu.read_missing_skeletons(r / "NTU_RGBD_samples_with_missing_skeletons.txt")
    return sum(n[:20] not in listed for n in names)

  files = [(n, "text") for n in names] + [("NTU_RGBD_samples_with_missing_skeletons.txt", "text")]
  return Manual("ntu_rgbd", "ntu60_xsub", root, files, expected)


def _kinetics(real: pathlib.Path, root: pathlib.Path) -> Manual:
  clips = sorted(f.name for f in (real / "kinetics_skeleton").glob("__*.json"))
  for n in clips:
    _copy(real / "kinetics_skeleton" / n, root / "kinetics_val" / n)
  _copy(real / "kinetics_skeleton/kinetics_val_label.json", root / "kinetics_val_label.json")
  files = [(f"kinetics_val/{n}", "json") for n in clips] + [("kinetics_val_label.json", "text")]
  return Manual("kinetics_skeleton", "top2", root, files, lambda r: len(clips))


def _pku(real: pathlib.Path, root: pathlib.Path) -> Manual:
  _copy(real / "pku_mmd/A10N08-L.txt", root / "PKU_Skeleton_Renew/A10N08-L.txt")
  (root / "Train_Label_PKU_final").mkdir()
  (root / "Train_Label_PKU_final/A10N08-L.txt").write_text("1,10,70,1\n14,100,180,2\n"
                                                           "51,900,1040,1\n")
  (root / "cross-subject.txt").write_text("Training videos: \nA10N08-L, 0002-M\n"
                                          "Validataion videos: \n0291-L\n")

  def expected(r):
    return len(pku_mmd.read_labels(r / "Train_Label_PKU_final/A10N08-L.txt"))

  files = [("PKU_Skeleton_Renew/A10N08-L.txt", "text"), ("Train_Label_PKU_final/A10N08-L.txt",
                                                         "text"), ("cross-subject.txt", "text")]
  return Manual("pku_mmd", "xsub", root, files, expected)


def _humanml3d(real: pathlib.Path, root: pathlib.Path) -> Manual:
  _copy(real / "humanml3d/new_joints/012314.npy", root / "new_joints/012314.npy")
  (root / "texts").mkdir()
  (root / "texts/012314.txt").write_text(
      "a person serves a tennis ball.#a/DET person/NOUN serve/VERB#0.0#0.0\n"
      "someone tosses a ball up and swings overhead.#someone/PRON toss/VERB#1.0#5.5\n")
  (root / "test.txt").write_text("012314\n")
  files = [("new_joints/012314.npy", "npy"), ("texts/012314.txt", "text"), ("test.txt", "text")]
  return Manual("humanml3d", None, root, files, lambda r: 1)


def _nw_ucla(real: pathlib.Path, root: pathlib.Path) -> Manual:
  rng = np.random.default_rng(0)
  names = {"a01_s01_e00_v01": 1, "a11_s02_e01_v02": 9, "a12_s03_e02_v03": 10}
  root.mkdir(parents=True, exist_ok=True)
  for i, (n, label) in enumerate(names.items()):
    frames = rng.normal(size=(5 + i, 20, 3)).round(4)
    (root / f"{n}.json").write_text(json.dumps({"file_name": n, "skeletons": frames.tolist(),
                                                "label": label}))
  return Manual("nw_ucla", "xview", root, [(f"{n}.json", "json") for n in names],
                lambda r: len(names))


MANUALS = {"ntu_rgbd": (_ntu, 20), "kinetics_skeleton": (_kinetics, 20), "pku_mmd": (_pku, 20),
           "humanml3d": (_humanml3d, 20), "nw_ucla": (_nw_ucla, 12)}


def _builder_cls(name: str):
  return importlib.import_module(f"data_prep.{name}.{name}_dataset_builder").Builder


def _alarm(signum, frame):
  raise TimeoutError(f"build ran longer than {BUILD_TIME_LIMIT_S} s")


def _build(manual: Manual, data_dir: str) -> int:
  """Examples written by a build of `manual` into `data_dir`."""
  builder = _builder_cls(manual.module)(config=manual.config, data_dir=data_dir,
                                        file_format="array_record")
  old = signal.signal(signal.SIGALRM, _alarm)
  signal.setitimer(signal.ITIMER_REAL, BUILD_TIME_LIMIT_S)
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual.root)))
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)
  return sum(s.num_examples for s in builder.info.splits.values())


@pytest.mark.parametrize("name", sorted(MANUALS))
def test_a_corrupted_manual_file_fails_the_build_naming_it(name, shared_data, tmp_path,
                                                           fuzz_tally):
  setup, examples = MANUALS[name]
  manual = setup(shared_data / "real", tmp_path / "manual")
  pristine = {rel: (manual.root / rel).read_bytes() for rel, _ in manual.files}
  assert _build(manual, os.fspath(tmp_path / "clean")) == manual.expected(manual.root) > 0
  cache: dict[str, dict] = {}
  tally = fuzz_tally.setdefault(f"build {name}", collections.Counter())
  kinds = fuzz_tally.setdefault(f"build {name} valid by kind", collections.Counter())

  def entry(rel: str, kind: str) -> dict:
    if rel not in cache:
      raw = pristine[rel]
      cache[rel] = {"raw": raw, "lines": raw.split(b"\n")}
      if kind == "json":
        cache[rel]["doc"] = json.loads(raw)
        cache[rel]["paths"] = M.json_paths(cache[rel]["doc"])
      if kind == "npy":
        cache[rel]["arr"] = np.load(manual.root / rel)
    return cache[rel]

  @hypothesis.settings(max_examples=examples * M.FUZZ_SCALE,
                       derandomize=M.DERANDOMIZE, deadline=None, database=None,
                       suppress_health_check=list(hypothesis.HealthCheck))
  @hypothesis.given(data=st.data())
  def case(data):
    rel, kind = data.draw(st.sampled_from(manual.files), label="file")
    e = entry(rel, kind)
    if kind == "json" and data.draw(st.booleans(), label="structural"):
      mutation, content = M.mutate_json(data, e["doc"], e["paths"])
    elif kind == "npy":
      mutation, content = M.mutate_npy(data, e["raw"], e["arr"])
    else:
      mutation, content = M.mutate_text(data, e["raw"], e["lines"])
    target = manual.root / rel
    target.write_bytes(content)
    data_dir = tempfile.mkdtemp(dir=tmp_path)
    try:
      try:
        written = _build(manual, data_dir)
      except (SkeletonFormatError, ValueError, FileNotFoundError) as err:
        assert os.fspath(target) in str(err), f"{mutation} of {rel}: error names another file: {err}"
        tally["error"] += 1
        return
      finally:
        tally["cases"] += 1
      try:
        want = manual.expected(manual.root)
      except SkeletonFormatError as err:  # the skip list itself is malformed: the build must fail
        raise AssertionError(f"{mutation} of {rel}: build succeeded but {err}") from None
      assert written == want, f"{mutation} of {rel}: {written} examples written, {want} expected"
      tally["valid"] += 1
      kinds[f"{rel.split('/')[-1]}:{mutation.split(':')[0]}"] += 1
    finally:
      target.write_bytes(pristine[rel])
      shutil.rmtree(data_dir, ignore_errors=True)

  case()
