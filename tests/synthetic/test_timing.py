"""Active windows and time profiles of the synthetic motions."""

import numpy as np
import pytest

from skel_llm.synthetic import timing


def test_window_length_follows_speed_and_stays_in_the_clip():
  for seed in range(20):
    rng = np.random.default_rng(seed)
    speed = rng.uniform(0.3, 4.0)
    w = timing.make_window(48, speed, rng, base_length=0.8)
    assert 0.0 < w.start < w.end < 1.0
    np.testing.assert_allclose(w.end - w.start, np.clip(0.8 / speed, 0.3, 0.96))
  with pytest.raises(ValueError, match="speed"):
    timing.make_window(48, 0.0, np.random.default_rng(0))
  with pytest.raises(ValueError, match="at least 2 frames"):
    timing.make_window(1, 1.0, np.random.default_rng(0))


def test_profiles_rest_outside_the_window():
  w = timing.make_window(200, 1.6, np.random.default_rng(1))
  before, after = w.u < w.start, w.u > w.end
  pulse = w.pulse((0.0, 0.4), (0.6, 1.0))
  osc = w.oscillation(3)
  for x in (pulse, osc):
    np.testing.assert_allclose(x[before], 0.0, atol=1e-12)
    np.testing.assert_allclose(x[after], 0.0, atol=1e-12)
  assert pulse.max() == pytest.approx(1.0) and pulse.min() >= 0.0
  # Three full cycles of sin: negative-to-positive crossings at 1/3 and 2/3 of the span.
  s = np.sign(osc[(w.phase > 0.15) & (w.phase < 0.85)])
  assert int(np.sum((s[:-1] < 0) & (s[1:] > 0))) == 2
  assert osc.max() == pytest.approx(1.0, abs=0.02) and osc.min() == pytest.approx(-1.0, abs=0.02)


def test_smoothstep_is_monotone_with_flat_ends():
  x = np.linspace(-0.5, 1.5, 201)
  y = timing.smoothstep(x)
  assert np.all(np.diff(y) >= 0) and y[0] == 0.0 and y[-1] == 1.0
  np.testing.assert_allclose(timing.smoothstep(np.array([0.5])), 0.5)
