"""Procedural synthetic skeleton actions: the embedded default data (no download).

`generate_clip(label, seed)` returns a `SkeletonRecord` of a plausible human
motion (joint-angle trajectories through forward kinematics) with a true
step-by-step description ending in `Label: <name>`; `CLASS_NAMES` lists the
actions (index = label); `compositional_split()` holds out unseen verb/part
combinations for zero-shot experiments. `captions.captions(description)` gives a clip's
reference captions and `qa.questions(label, description, ...)` its Skeleton-QA questions
(docs/skeleton_qa.md).
"""

from skel_llm.synthetic.classes import (CLASS_NAMES, CLASSES, TWO_PERSON_LABELS, ActionClass,
                                        compositional_split, label_index)
from skel_llm.synthetic.generator import FPS, KNOB_RANGES, generate_clip

__all__ = ["ActionClass", "CLASSES", "CLASS_NAMES", "FPS", "KNOB_RANGES", "TWO_PERSON_LABELS",
           "compositional_split", "generate_clip", "label_index"]
