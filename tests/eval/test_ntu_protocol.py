"""The protocol machinery end to end on a tiny TFDS NTU build of the 7 real sample files.

`data_prep/ntu_rgbd` builds ntu60_xsub from ../shared/data/real/ntu_skeleton (read in place):
training performers 1, 8, 15 (A001, A005, A011, A034, A058 handshaking) and test performer 3
(A003, A017). With protocol ntu60_40_20 (unseen 0 12 13 14 15 16 17 22 23 26 29 30 31 35 36 42
43 48 56 57) the run trains on the seen classes of the training split (A005, A011, A034), the
recognition evaluator asks about the unseen test clips only (A017; A003 is a seen class) with the
20 unseen names as candidates, and an evaluator reading the training split's unseen clips (A001,
A058) reports the 1-person / 2-person breakdown by NTU's two-person classes (A50-A60).
"""

import jax
import ml_collections
import pytest

from skel_llm.data import classnames, protocols
from skel_llm.eval import options
from skel_llm.train import defaults, trainer


@pytest.fixture(scope="module")
def ntu_dir(tmp_path_factory, shared_data):
  from tests.data_prep.conftest import _build
  from data_prep.ntu_rgbd import ntu_rgbd_dataset_builder as b
  d = tmp_path_factory.mktemp("tfds")
  _build(b.Builder, d, shared_data / "real" / "ntu_skeleton", "ntu60_xsub")
  return d


def _config(ntu_dir, **evals):
  c = defaults.base("smoke")
  c.data.source = "tfds"
  c.data.tfds_name = "ntu_rgbd/ntu60_xsub"
  c.data.data_dir = str(ntu_dir)
  c.data.protocol = "ntu60_40_20"
  c.data.max_frames = 300
  c.data.max_len = 700
  c.evals = ml_collections.ConfigDict(evals)
  return c


def test_seen_unseen_candidates_and_person_split(ntu_dir):
  proto = protocols.get("ntu60_40_20")
  names = classnames.class_names("ntu60")
  c = _config(ntu_dir,
              test=options.evaluator("recognition", num_clips=100, batch_size=2,
                                     max_new_tokens=4),
              train_unseen=options.evaluator("recognition", num_clips=100, batch_size=2,
                                             max_new_tokens=4, data=dict(eval_split="train")),
              yn=options.evaluator("yesno", num_clips=100, batch_size=2))
  run = trainer.Run(c, devices=jax.devices()[:1])
  # Training: the seen classes of the training performers.
  labels = sorted(run.train_source[i].label for i in range(len(run.train_source)))
  assert labels == [4, 10, 33] and run.train_source.candidate_ids == list(proto.seen)
  state = run.init_state()
  evaluators = run.evaluators()
  results = evaluators.run(state, 0, final=True)
  test = evaluators.items["test"][1]
  assert test.data.candidates == list(proto.unseen_names)
  assert test.data.source.two_person_labels == tuple(range(49, 60))  # A50-A60
  _, details = test.run(state)
  assert [r["truth"] for r in details["records"]] == [names[16]]  # A017; A003 is seen
  assert results["test"]["num_clips"] == 1 and results["test"]["chance"] == 1 / 20
  assert "strict_1p" in results["test"] and "strict_2p" not in results["test"]
  _, details = evaluators.items["train_unseen"][1].run(state)
  assert sorted(r["truth"] for r in details["records"]) == sorted([names[0], names[57]])
  assert {"strict_1p", "strict_2p", "authors_1p", "authors_2p"} <= set(results["train_unseen"])
  assert results["yn"]["num_clips"] == 1  # the one unseen test clip, asked twice


def test_a_protocol_without_test_clips_is_named(ntu_dir):
  c = _config(ntu_dir, empty=options.evaluator(
      "recognition", num_clips=10, batch_size=2, data=dict(protocol="ntu60_55_5")))
  run = trainer.Run(c, devices=jax.devices()[:1])
  run.init_state()
  with pytest.raises(ValueError, match=r"config.evals.empty: ntu_rgbd/ntu60_xsub/test: no "
                                       r"examples of the requested classes"):
    run.evaluators()
