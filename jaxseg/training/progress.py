"""A progress line with steps/s and ETA (host-side wall clock)."""
import time


def format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


class Progress:
  """Tracks throughput between calls; time spent in eval/checkpoints is excluded via `pause`."""

  def __init__(self, start_step: int, total_steps: int):
    self.total = total_steps
    self._last_step = start_step
    self._last_time = time.perf_counter()
    self._paused = 0.0
    self.steps_per_sec = float('nan')

  def pause(self, seconds: float):
    self._paused += seconds

  def update(self, step: int) -> str:
    now = time.perf_counter()
    elapsed = now - self._last_time - self._paused
    if step > self._last_step and elapsed > 0:
      self.steps_per_sec = (step - self._last_step) / elapsed
    self._last_step, self._last_time, self._paused = step, now, 0.0
    eta = (self.total - step) / self.steps_per_sec if self.steps_per_sec > 0 else float('nan')
    eta_s = format_duration(eta) if eta == eta else '?'
    return (f'step {step}/{self.total} ({100.0 * step / max(self.total, 1):.1f}%) '
            f'{self.steps_per_sec:.2f} steps/s ETA {eta_s}')
