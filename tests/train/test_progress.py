"""Pins skel_llm/train/progress.py: the phase and ETA arithmetic, on a hand-driven clock."""

import io
import time

from skel_llm.train import progress


class Clock:
  def __init__(self, t=100.0):
    self.t = t

  def __call__(self):
    return self.t


def test_format_seconds():
  assert [progress.format_seconds(s) for s in (0, 7.4, 81, 3725, -3)] == [
      "0:00", "0:07", "1:21", "1:02:05", "0:00"]


def test_eta_leaves_the_compile_step_out():
  # Job started at 90, bar at 100; the first step (compile) ends at 160, then 2 s per step.
  est = progress.Estimate(0, 100, begin=100.0, job_start=90.0)
  assert est.describe(130.0) == ("elapsed 0:40, compiling the train step (the first step "
                                 "includes it)")
  assert est.remaining_s() is None
  est.tick(1, 160.0)
  assert est.compile_s == 60.0
  assert est.describe(160.0) == "elapsed 1:10, compile 60.0 s, ETA after the second step"
  for step in range(2, 11):
    est.tick(step, 160.0 + 2.0 * (step - 1))
  # 90 steps left at 2 s: 3:00, where the mean rate (178 s / 10 steps) would have said 26:42.
  assert est.step_s == 2.0 and est.remaining_s() == 180.0
  assert est.describe(178.0) == "elapsed 1:28, compile 60.0 s, 2.00 s/step, ETA 3:00"


def test_rate_is_a_median_of_recent_steps_and_counts_skipped_ticks():
  est = progress.Estimate(10, 50, begin=0.0)  # a resumed run: steps 10 -> 50
  est.tick(11, 30.0)
  for step, t in ((12, 31.0), (13, 32.0), (14, 45.0), (15, 46.0), (16, 47.0)):
    est.tick(step, t)  # one 13 s hiccup among 1 s steps
  assert est.step_s == 1.0 and est.remaining_s() == 34.0
  est.tick(20, 51.0)  # four steps at once (a log step without per-step ticks): 1 s each
  assert est.step_s == 1.0 and est.remaining_s() == 30.0
  for step in range(21, 41):
    est.tick(step, 51.0 + 3.0 * (step - 20))  # the machine got 3x slower: the rate follows
  assert est.step_s == 3.0 and est.remaining_s() == 30.0


def test_bar_text_and_closing_line():
  clock, out = Clock(), io.StringIO()
  bar = progress.Progress(0, 4, stream=out, clock=clock, heartbeat_s=0, job_start=95.0)
  assert "0/4 [elapsed 0:05, compiling the train step" in out.getvalue()
  clock.t = 112.0
  bar.tick(1)
  clock.t = 113.5
  bar.tick(2)
  clock.t = 115.0
  bar.update(2, {"loss": 1.23456, "accuracy": 0.5})
  assert "2/4 [elapsed 0:20, compile 12.0 s, 1.50 s/step, ETA 0:03, loss 1.2346, acc 0.500]" in (
      out.getvalue().replace("\r", "\n"))
  clock.t = 118.0
  bar.tick(4)
  bar.close()
  assert out.getvalue().rstrip().splitlines()[-1] == (
      "[skel_llm] trained steps 0 -> 4 in 0:18 (compile 12.0 s); next: the end strip, the "
      "evaluators (config.evals) and the export")


def test_ticks_redraw_at_most_twice_a_second():
  clock, out = Clock(), io.StringIO()
  bar = progress.Progress(0, 100, stream=out, clock=clock, heartbeat_s=0, job_start=100.0)
  drawn = out.getvalue().count("\r")
  for step in range(1, 11):  # ten fast steps within 0.4 s of the first draw
    clock.t = 100.0 + 0.04 * step
    bar.tick(step)
  assert out.getvalue().count("\r") == drawn
  clock.t = 100.6
  bar.tick(11)
  assert out.getvalue().count("\r") == drawn + 1 and "11/100" in out.getvalue()
  assert bar.estimate.done == 11
  bar.close()


def test_an_early_stop_prints_no_closing_line():
  clock, out = Clock(), io.StringIO()
  bar = progress.Progress(0, 10, stream=out, clock=clock, heartbeat_s=0)
  clock.t = 105.0
  bar.tick(3)
  bar.close()  # e.g. a non-finite step at 3 of 10
  assert "[skel_llm] trained" not in out.getvalue() and "3/10" in out.getvalue()


def test_disabled_bar_writes_nothing():
  out = io.StringIO()
  bar = progress.Progress(0, 3, enabled=False, stream=out, clock=Clock())
  bar.tick(1)
  bar.update(1, {"loss": 1.0})
  bar.close()
  assert out.getvalue() == ""
  assert bar.estimate.done == 1


def test_heartbeat_redraws_while_compiling():
  clock, out = Clock(), io.StringIO()
  bar = progress.Progress(0, 2, stream=out, clock=clock, heartbeat_s=0.01, job_start=100.0)
  clock.t = 163.0  # no tick: only the heartbeat thread can draw this
  deadline = time.monotonic() + 60
  while "elapsed 1:03" not in out.getvalue() and time.monotonic() < deadline:
    time.sleep(0.01)
  bar.close()
  assert "elapsed 1:03, compiling the train step" in out.getvalue()
