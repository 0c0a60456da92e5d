"""`kinematic`: the `Teacher` wrapper of `skel_llm.teachers.kinematic` (no frames, no network)."""

from __future__ import annotations

from skel_llm.teachers import base, kinematic


class KinematicTeacher:
  kind = "kinematic"
  model = "kinematic"
  prompt_version = kinematic.PROMPT_VERSION
  needs_frames = False
  prices = None

  def ask(self, request: base.Request) -> base.Reply:
    return base.Reply(kinematic.rationale(request.positions, request.topology, request.label))

  def close(self) -> None:
    pass
