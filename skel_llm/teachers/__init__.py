"""Teachers that write stage 3's Causal Reasoning Distillation rationales, and the job that asks them.

| spec | teacher |
|---|---|
| `kinematic` | offline: a causal chain computed from the joint trajectories (`kinematic`) |
| `openai:<base_url>#<model>[?key_env=VAR&price_in=USD&price_out=USD&...]` | any OpenAI-compatible chat-completions endpoint (`openai_teacher`) |
| `local:<run workdir or HF InternVL folder>` | our own Flax MLLM, batched greedy generation (`local`) |

`python -m skel_llm.teach` renders each seen-class training clip as training does, asks the
teacher, validates the reply (`validate`) and appends one JSON line per clip (`job`).
"""

from skel_llm.teachers.base import Reply, Request, Teacher, make_teacher, validate

__all__ = ["Reply", "Request", "Teacher", "make_teacher", "validate"]
