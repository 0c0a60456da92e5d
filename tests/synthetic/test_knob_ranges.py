"""Pins the (low, high) range form of `generate_clip`'s variation knobs."""

import numpy as np
import pytest

from skel_llm import synthetic
from skel_llm.data import sources


def test_a_range_draws_inside_it_and_leaves_every_other_knob_unchanged():
  for seed in range(20):
    base = synthetic.generate_clip("squat", seed).metadata["knobs"]
    narrow = synthetic.generate_clip("squat", seed, view_yaw_deg=(-5.0, 5.0)).metadata["knobs"]
    assert -5.0 <= narrow["view_yaw_deg"] <= 5.0
    assert {k: v for k, v in narrow.items() if k != "view_yaw_deg"} == {
        k: v for k, v in base.items() if k != "view_yaw_deg"}


def test_the_default_range_given_explicitly_reproduces_the_default_clip():
  lo, hi = synthetic.KNOB_RANGES["distance"]
  a = synthetic.generate_clip("bow", 3)
  b = synthetic.generate_clip("bow", 3, distance=(lo, hi))
  np.testing.assert_array_equal(a.positions, b.positions)


def test_a_degenerate_range_fixes_the_knob_and_bad_ranges_are_named():
  rec = synthetic.generate_clip("jump", 1, lateral=(0.0, 0.0), distance=(3.0, 3.0))
  assert rec.metadata["knobs"]["lateral"] == 0.0 and rec.metadata["knobs"]["distance"] == 3.0
  with pytest.raises(ValueError, match="view_yaw_deg"):
    synthetic.generate_clip("jump", 1, view_yaw_deg=(10.0, -10.0))


def test_synthetic_source_passes_knobs_and_names_unknown_ones():
  def depth(distance):
    src = sources.SyntheticSource(num_clips=1, seed_offset=0, num_frames=24, topology="ntu25",
                                  classes=["squat"], knobs={"distance": (distance, distance)})
    return float(np.median(src[0].positions[:, 0, 0, 2]))  # spine base z, metres

  assert depth(3.4) - depth(2.6) == pytest.approx(0.8, abs=0.05)
  with pytest.raises(ValueError, match="synthetic_knobs.*yaw"):
    sources.SyntheticSource(num_clips=4, seed_offset=0, num_frames=24, topology="ntu25",
                            knobs={"yaw": (0, 1)})
