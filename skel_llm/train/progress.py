"""The training progress line: what the job is doing from its first second, and when it ends.

On a slow or busy machine the first train step (which includes XLA's compilation) can take
minutes with nothing else on the screen, and an ETA taken from the average rate counts that
compilation as if every step were as slow. So the line says "compiling" until the first step
returns, keeps its clock ticking meanwhile, and from then on estimates the rest from the steps
after the first only:

    train  37%|███▋      | 148/400 [elapsed 1:21, compile 9.8 s, 0.44 s/step, ETA 1:51]

The trainer's hook is three calls: `Progress(start, total)`, `tick(step)` after every step,
`update(step, metrics)` at log steps (loss, answer-token accuracy), and `close()` (which says
what comes next when the last step is done, and nothing on an early stop).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

_RECENT = 20  # steps the rate is taken over (a median: one slow step on a busy host is ignored)
_JOB_START = time.monotonic()  # "elapsed" counts from here: this module loads at start-up
_BAR = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "


def announce_start(stream: TextIO | None = None) -> None:
  """One line before the silent start-up phase (data, model init, first strip compile)."""
  print("[skel_llm] starting: building the data pipeline and the model, compiling its "
        "initialisation and the renderer; the progress bar follows", file=stream or sys.stderr,
        flush=True)


def format_seconds(seconds: float) -> str:
  """0:07, 1:21, 1:02:05."""
  seconds = max(0, int(round(seconds)))
  h, rest = divmod(seconds, 3600)
  m, s = divmod(rest, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Estimate:
  """Compile time, step time and remaining time from the clock readings of step ends.

  `begin` is when the first step was dispatched; the first step's end closes the compile
  phase (it includes one step, a small part of it on the demo), every later step gives a step
  time. All times come from the caller's clock, so this is exact arithmetic on readings.
  """

  def __init__(self, start_step: int, total_steps: int, begin: float,
               job_start: float | None = None):
    self.start_step, self.total_steps, self.begin = start_step, total_steps, begin
    self.job_start = begin if job_start is None else job_start
    self.compile_s: float | None = None
    self.done = start_step
    self._last: float | None = None
    self._step_times: list[float] = []

  def tick(self, step: int, now: float) -> None:
    if self._last is None:
      self.compile_s = now - self.begin
    else:
      per = (now - self._last) / max(1, step - self.done)
      self._step_times = (self._step_times + [per] * max(1, step - self.done))[-_RECENT:]
    self._last, self.done = now, step

  @property
  def step_s(self) -> float | None:
    return statistics.median(self._step_times) if self._step_times else None

  def remaining_s(self) -> float | None:
    """Seconds until the last train step ends; None until a step after the first has ended."""
    step_s = self.step_s
    return None if step_s is None else step_s * (self.total_steps - self.done)

  def describe(self, now: float) -> str:
    parts = [f"elapsed {format_seconds(now - self.job_start)}"]
    if self.compile_s is None:
      parts.append("compiling the train step (the first step includes it)")
      return ", ".join(parts)
    parts.append(f"compile {self.compile_s:.1f} s")
    if self.step_s is None:
      parts.append("ETA after the second step")
    else:
      parts += [f"{self.step_s:.2f} s/step", f"ETA {format_seconds(self.remaining_s())}"]
    return ", ".join(parts)


class Progress:
  """tqdm bar over steps with `Estimate`'s phase and ETA, and the last logged metrics.

  A background thread redraws the bar every `heartbeat_s` (1 s on a terminal, 30 s into a
  log file), so the elapsed time moves while the first step compiles.
  """

  def __init__(self, start: int, total: int, enabled: bool = True, *,
               stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
               heartbeat_s: float | None = None, job_start: float | None = None):
    self._clock = clock
    if job_start is None and clock is time.monotonic:
      job_start = _JOB_START
    self.estimate = Estimate(start, total, clock(), job_start)
    self._bar = None
    self._drawn = -float("inf")
    self._metrics = ""
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread = None
    if not enabled:
      return
    from tqdm import tqdm
    stream = sys.stderr if stream is None else stream
    self._stream = stream
    self._bar = tqdm(total=total, initial=start, desc="train", unit="step", file=stream,
                     dynamic_ncols=True, mininterval=0.5, bar_format=_BAR)
    self._redraw()
    if heartbeat_s is None:
      heartbeat_s = 1.0 if getattr(stream, "isatty", lambda: False)() else 30.0
    if heartbeat_s > 0:
      self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True)
      self._thread.start()

  def _redraw(self) -> None:
    self._drawn = self._clock()
    text = self.estimate.describe(self._drawn) + self._metrics
    # The text goes into the format itself: tqdm's postfix would open with ", ".
    self._bar.bar_format = _BAR + "[" + text.replace("{", "{{").replace("}", "}}") + "]"
    self._bar.refresh()

  def _beat(self, every: float) -> None:
    while not self._stop.wait(every):
      with self._lock:
        if self._bar is not None:
          self._redraw()

  def tick(self, step: int) -> None:
    """After every train step (`step` = steps done); redraws at most every 0.5 s."""
    with self._lock:
      now = self._clock()
      self.estimate.tick(step, now)
      if self._bar is not None:
        self._bar.n = step
        if now - self._drawn >= 0.5 or step == self.estimate.total_steps:
          self._redraw()

  def update(self, step: int, metrics: dict[str, float]) -> None:
    """At log steps: the loss, answer-token accuracy and steps/s since the last log step."""
    with self._lock:
      if self.estimate.done < step:
        self.estimate.tick(step, self._clock())
      self._metrics = (f", loss {metrics.get('loss', float('nan')):.4f}, "
                       f"acc {metrics.get('accuracy', float('nan')):.3f}")
      if self._bar is not None:
        self._bar.n = step
        self._redraw()

  def close(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    with self._lock:
      if self._bar is None:
        return
      self._redraw()
      self._bar.close()
      self._bar = None
      e = self.estimate
      if e.done < e.total_steps:
        return  # stopped early (an error, SIGTERM): the caller says why
      print(f"[skel_llm] trained steps {e.start_step} -> {e.done} in "
            f"{format_seconds(self._clock() - e.begin)}"
            + (f" (compile {e.compile_s:.1f} s)" if e.compile_s is not None else "")
            + "; next: the end strip, the evaluators (config.evals) and the export",
            file=self._stream, flush=True)
