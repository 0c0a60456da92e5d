"""What a multimodal teacher is asked (our wording; the structure follows the authors' release:
a system role, the frames each introduced by `Frame{i}:`, the true label, a summary, a causal
chain, a final label line). Changing any text here must bump `PROMPT_VERSION`: the request
cache and the output file are keyed on it.
"""

from __future__ import annotations

import base64
import io
import numpy as np

PROMPT_VERSION = "cr-v1"
TEMPERATURE = 0.2
MAX_TOKENS = 512

SYSTEM = ("You are an expert in human action recognition and in explaining how body motion "
          "reveals an action.")


def user_text(label: str, num_frames: int) -> str:
  return (f"The {num_frames} images above are time-ordered renderings of one 3D skeleton "
          f"sequence; colours encode depth and motion. The performed action is '{label}'.\n"
          "Explain how the motion shows this action:\n"
          "(1) one sentence summarising the movement;\n"
          "(2) a numbered causal chain of steps, each naming the body parts involved and when "
          "they move relative to each other (which part starts, which follow);\n"
          f"(3) a last line exactly 'Label: {label}'.")


def png_data_uri(frame: np.ndarray) -> str:
  """data:image/png;base64 URI of one uint8[S, S, 3] frame."""
  from PIL import Image
  buf = io.BytesIO()
  Image.fromarray(np.asarray(frame, np.uint8)).save(buf, format="PNG")
  return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def messages(frames: np.ndarray, label: str) -> list[dict]:
  """Chat-completions messages for uint8[n, S, S, 3] frames."""
  content: list[dict] = []
  for i, f in enumerate(frames):
    content.append({"type": "text", "text": f"Frame{i + 1}:"})
    content.append({"type": "image_url", "image_url": {"url": png_data_uri(f)}})
  content.append({"type": "text", "text": user_text(label, len(frames))})
  return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def body(model: str, frames: np.ndarray, label: str, *, temperature: float = TEMPERATURE,
         max_tokens: int = MAX_TOKENS) -> dict:
  """The request body (also the `body` of an OpenAI Batch line)."""
  return {"model": model, "messages": messages(frames, label), "temperature": temperature,
          "max_tokens": max_tokens}
