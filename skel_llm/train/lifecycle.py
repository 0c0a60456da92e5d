"""The edges of a training run: non-finite steps, preemption (SIGTERM), and stopping.

- `FiniteCheck` checks every step's loss and norms on the host, one step behind the device,
  and before every checkpoint, so a non-finite state is never written (`NonFiniteError`).
- `OverflowTally` counts, from the same one-step-behind fetch, the (tile, Gaussian) pairs the
  tiled rasteriser dropped (`render_overflow`): the first step that drops any is logged as a
  warning, and the totals go into `result.json`, so inexact frames are never trained on unseen.
- `Stopper` turns SIGTERM (or jax's preemption sync point with several processes) into a
  save of the current step; the trainer then raises `Preempted`, and `skel_llm.main` exits
  with status 143 as a preempted job does.
"""

from __future__ import annotations

import logging
import math
import signal

import jax

log = logging.getLogger(__name__)


class Preempted(Exception):
  """Training stopped on SIGTERM after saving `step`; rerunning the command resumes."""

  def __init__(self, step: int):
    super().__init__(f"preempted: checkpoint of step {step} saved; rerun to resume")
    self.step = step


def host_metrics(metrics: dict) -> dict[str, float]:
  return {k: float(v) for k, v in jax.device_get(metrics).items()}


class NonFiniteError(FloatingPointError):
  pass


FINITE_KEYS = ("loss", "l2_grads", "l2_params", "l2_updates")


def check_finite(step: int, metrics: dict[str, float]) -> None:
  bad = [k for k in FINITE_KEYS if k in metrics and not math.isfinite(metrics[k])]
  if bad:
    raise NonFiniteError(
        f"step {step}: non-finite {', '.join(f'{k}={metrics[k]}' for k in bad)}; training "
        f"stopped. Lower config.optim.lr, check the data, or set config.model.dtype='float32'")


class Stopper:
  """SIGTERM -> finish the current step, save, exit (preemption on pods).

  With several processes a SIGTERM may reach some of them only, or at different steps; they
  must still stop together, as the save is collective. There the handler of jax's preemption
  service (installed by `jax.distributed.initialize`) stays in place and
  `multihost_utils.reached_preemption_sync_point` names the same step on every process.
  """

  def __init__(self):
    self.requested = False
    self._old = None
    self._synced = jax.process_count() > 1

  def __enter__(self):
    if self._synced:
      return self
    try:
      self._old = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread: no handler, the default action stays
      self._old = None
    return self

  def stop_at(self, step: int) -> bool:
    """Whether to save and exit after `step`; call it after every step, on every process."""
    if self._synced and not self.requested:
      from jax.experimental import multihost_utils
      self.requested = multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def _handle(self, signum, frame):
    del signum, frame
    log.warning("SIGTERM: saving a checkpoint after this step and exiting")
    self.requested = True

  def __exit__(self, *exc):
    if self._old is not None:
      signal.signal(signal.SIGTERM, self._old)


class FiniteCheck:
  """Checks every step's loss and norms on the host, one step behind the device.

  Fetching step k's four scalars after step k + 1 has been dispatched keeps the device
  busy while the host waits, yet the run still stops at the first non-finite step, naming
  it; `flush()` checks the newest step at once (before a checkpoint is written). `tally`
  (an `OverflowTally`) gets the step's `render_overflow` from the same fetch.
  """

  def __init__(self, tally: OverflowTally | None = None):
    self._pending: list[tuple[int, dict]] = []
    self._tally = tally
    self._keys = FINITE_KEYS + ((OverflowTally.KEY,) if tally is not None else ())

  def push(self, step: int, metrics: dict) -> None:
    self.flush()
    self._pending.append((step, {k: metrics[k] for k in self._keys if k in metrics}))

  def flush(self) -> None:
    for step, metrics in self._pending:
      host = host_metrics(metrics)
      check_finite(step, host)
      if self._tally is not None:
        self._tally.add(step, host)
    self._pending.clear()


class OverflowTally:
  """Totals of the steps' `render_overflow` (dropped (tile, Gaussian) pairs).

  Fed by `FiniteCheck` (one step behind the device). The first step with dropped pairs is
  logged as a warning (the frames of that step are not exact up to the rasteriser's eps);
  `summary()` is what `result.json` records.
  """

  KEY = "render_overflow"

  def __init__(self, first_step: int):
    self.first_step = int(first_step)  # the steps counted: first_step + 1 onwards
    self.pairs = 0
    self.steps = 0
    self.first_overflow: int | None = None

  def add(self, step: int, metrics: dict[str, float]) -> None:
    dropped = int(metrics.get(self.KEY, 0))
    if not dropped:
      return
    self.pairs += dropped
    self.steps += 1
    if self.first_overflow is None:
      self.first_overflow = step
      log.warning("step %d: the tiled rasteriser dropped %d (tile, Gaussian) pairs (too "
                  "many for its capacity); those frames are not exact. Counted in "
                  "result.json's render_overflow; config.render.dense=True draws exactly",
                  step, dropped)
      print(f"[skel_llm] warning: step {step}: the tiled rasteriser dropped {dropped} "
            f"(tile, Gaussian) pairs; frames not exact (result.json: render_overflow)",
            flush=True)

  def summary(self) -> dict[str, int | None]:
    return {"pairs": self.pairs, "steps": self.steps, "first_step": self.first_overflow,
            "counted_after_step": self.first_step}
