"""`nw_ucla`: Northwestern-UCLA Multiview Action3D skeletons (Kinect v1, 20 joints, 10 classes).

Build from the repository root (TensorFlow-free; with TensorFlow installed,
`PYTHONPATH=. tfds build` takes the same arguments):

    python -m data_prep.build data_prep/nw_ucla --config=xview --manual_dir=/data/nw_ucla \
        --data_dir=~/tensorflow_datasets

Read:

    ds = tfds.data_source("nw_ucla/xview", split="test")
    positions, valid = data_prep.common.decode(ds[0])  # [T, 1, 20, 3], topology 'kinect20'

Configs: `xview` is the standard cross-view protocol (views 1 and 2 train, view 3
tests); `xview_v1` and `xview_v2` leave out view 1 or 2 instead.
Labels come from the action id in the sample name (`a11_s01_e00_v03` -> 8,
`skel_llm.data.classnames.NW_UCLA_CLASSES`); a `label` field inside the JSON
must agree with it (1-based).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from data_prep import common
from skel_llm.data import classnames
from skel_llm.skeleton import load

MANUAL_DOWNLOAD_INSTRUCTIONS = """
Download the NW-UCLA skeletons in the per-sample JSON layout used by skeleton action
recognition code (the `all_sqe/` folder: `a01_s01_e00_v01.json` ... with keys `file_name`,
`skeletons` [T][20][3] and `label`), e.g. from the CTR-GCN data instructions, and put the
JSON files anywhere under `manual_dir`.
"""


@dataclasses.dataclass
class UclaConfig(tfds.core.BuilderConfig):
  """Attributes: test_view, the camera view (1, 2 or 3) held out for testing."""

  test_view: int = 3


class Builder(tfds.core.GeneratorBasedBuilder):
  """NW-UCLA skeletons, cross-view splits."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Per-sample JSON (all_sqe), cross-view split, flat features."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      UclaConfig(name="xview", test_view=3, description="Views 1, 2 train; view 3 tests."),
      UclaConfig(name="xview_v1", test_view=1, description="Views 2, 3 train; view 1 tests."),
      UclaConfig(name="xview_v2", test_view=2, description="Views 1, 3 train; view 2 tests."),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    ids = {k: tfds.features.Scalar(dtype=np.int32)
           for k in ("action", "subject", "episode", "view")}
    return self.dataset_info_from_configs(
        description=__doc__,
        features=common.skeleton_features(
            label=tfds.features.ClassLabel(names=classnames.NW_UCLA_CLASSES), **ids),
        homepage="https://wangjiangb.github.io/my_data.html")

  def _split_generators(self, dl_manager):
    paths = common.find_files(dl_manager.manual_dir, ".json", "NW-UCLA sample JSON files",
                              MANUAL_DOWNLOAD_INSTRUCTIONS)
    records = [(p, load(p, format="nw_ucla")) for p in paths]
    for p, rec in records:
      if "view" not in rec.metadata:
        raise ValueError(f"{p}: sample name {rec.metadata['name']!r} is not aAA_sSS_eEE_vVV")
    test_view = self.builder_config.test_view
    train = [r for r in records if r[1].metadata["view"] != test_view]
    test = [r for r in records if r[1].metadata["view"] == test_view]
    return common.non_empty_splits("nw_ucla", {"train": train, "test": test},
                                   self._generate_examples)

  def _generate_examples(self, records):
    for path, rec in records:
      md = rec.metadata
      label = classnames.nw_ucla_label(md["action"])
      if "label" in md and md["label"] - 1 != label:
        raise ValueError(f"{path}: label {md['label']} (1-based) disagrees with action id "
                         f"a{md['action']:02d} (label {label + 1})")
      yield md["name"], common.encode(rec, md["name"], label=label,
                                      **{k: md[k] for k in ("action", "subject", "episode",
                                                            "view")})
