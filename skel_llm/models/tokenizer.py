"""Tokenizers: load one from a checkpoint folder, or (re)build the committed tiny BPE.

The tiny tokenizer (`TINY_TOKENIZER_DIR`) is a byte-level BPE trained offline with
`tokenizers` on this project's own label and prompt text (NTU-120 class names, synthetic
action names, prompt wording); it is saved in the standard `tokenizer.json` +
`tokenizer_config.json` format, with the `internvl2_5` chat template, so
`transformers.AutoTokenizer` reads it like a real checkpoint's. Regenerate it with

    python -m skel_llm.models.tokenizer --class_names=ntu120_similar_actions.json

where `ntu120_similar_actions.json` is the authors' list of confusable NTU-120 classes, from
their release (github.com/wangzy01/SkeletonLLM), keyed by the 120 class names in order.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import pathlib

TINY_TOKENIZER_DIR = pathlib.Path(__file__).resolve().parent / "assets" / "tiny_tokenizer"

# Qwen2.5 / InternVL special tokens used by prompts; ids 0..5 in the tiny tokenizer.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>",
                  "<IMG_CONTEXT>")
IMG_CONTEXT = "<IMG_CONTEXT>"
IMG_START, IMG_END = "<img>", "</img>"

# InternVL's `internvl2_5` conversation format (Qwen turns): an optional system turn, then
# `<|im_start|>{role}\n{content}<|im_end|>\n`; the generation prompt opens the assistant turn.
INTERNVL2_5_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

_TOKENIZER_FILES = ("tokenizer.json", "vocab.json + merges.txt", "tokenizer.model")


def load_tokenizer(folder: str | pathlib.Path):
  """`transformers` fast tokenizer (with the folder's chat template) from a local folder.

  Raises:
    FileNotFoundError: naming the folder and the files looked for, when none is present.
  """
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise FileNotFoundError(f"load_tokenizer: {folder} is not a folder")
  has = lambda name: (folder / name).is_file()  # noqa: E731
  if not (has("tokenizer.json") or (has("vocab.json") and has("merges.txt"))
          or has("tokenizer.model")):
    present = sorted(p.name for p in folder.iterdir())
    raise FileNotFoundError(f"load_tokenizer: {folder} holds no tokenizer file; expected one of "
                            f"{', '.join(_TOKENIZER_FILES)}; found {present}")
  # transformers' import warns "PyTorch was not found. Models won't be available" as advice;
  # only its tokenizers are used here, which need no PyTorch, so the advice would mislead.
  os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
  import transformers  # Heavy import, only when a tokenizer is actually loaded.
  return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


@functools.lru_cache(maxsize=1)
def tiny_tokenizer_ids() -> tuple[int, int]:
  """(vocabulary size, `<IMG_CONTEXT>` id) of the committed tiny tokenizer, read from its JSON."""
  with open(TINY_TOKENIZER_DIR / "tokenizer.json", encoding="utf-8") as f:
    spec = json.load(f)
  vocab = dict(spec["model"]["vocab"])
  for tok in spec["added_tokens"]:
    vocab[tok["content"]] = tok["id"]
  return max(vocab.values()) + 1, vocab[IMG_CONTEXT]


# --- corpus for the tiny tokenizer ----------------------------------------------------------

_VERBS = ("raise", "lower", "wave", "kick", "swing", "stretch", "bend", "lift", "extend",
          "rotate", "shake", "punch", "point", "reach", "cross", "circle", "tap", "stamp")
_SIDES = ("left", "right", "both")
_PARTS = ("arm", "arms", "hand", "hands", "leg", "legs", "foot", "feet", "knee", "elbow",
          "shoulder", "head", "wrist", "hip", "torso")
_WHOLE_BODY = ("squat", "jump", "turn", "bow", "handshake", "push", "pull", "walk", "sit down",
               "stand up", "clap", "hop", "crouch", "spin", "lean forward", "lean back",
               "turn left", "turn right", "jump up", "squat down", "push forward")

# The synthetic generator's labels when the asset was trained (skel_llm/synthetic/classes.py,
# 2026-11). Frozen here so the committed asset stays reproducible when classes are added;
# byte-level BPE still encodes any later label, only less compactly.
SYNTHETIC_LABELS = (
    "raise left arm", "raise right arm", "raise left leg", "raise right leg", "swing left arm",
    "swing right arm", "swing left leg", "swing right leg", "stretch left arm",
    "stretch right arm", "stretch left leg", "stretch right leg", "bend left arm",
    "bend right arm", "bend left leg", "bend right leg", "wave left hand", "wave right hand",
    "kick left leg", "kick right leg", "punch with left hand", "punch with right hand",
    "clap hands", "squat", "jump", "turn left", "turn right", "bow", "lean left", "lean right",
    "handshake", "push", "nod head", "hop on left leg", "hop on right leg", "march in place")

_PROMPTS = (
    "These frames are skeleton renderings of one human action, shown in temporal order.",
    "These frames are skeleton renderings of a person performing an action.",
    "Frame{i}: <image>",
    "Choose the action from the candidate labels: {labels}.",
    "Answer with exactly one label from the list.",
    "Is the action '{label}'? Answer YES or NO.",
    "YES", "NO", "Yes", "No",
    "Describe the motion of each body part, infer the action, and end with the line Label: "
    "<action>.",
    "Describe the motion step by step.",
    "Label: {label}",
    "The person {verb} the {side} {part}, then returns to a neutral pose.",
    "First the {side} {part} moves up, then it moves down again.",
    "The motion starts slowly and speeds up; the body stays upright.",
    "Summary: the subject performs {label}.",
    "Causal chain: the {side} {part} moves, the torso follows, the weight shifts.",
    "What is the person doing?",
    "Which action is shown?",
    "You are a helpful assistant that recognises human actions from skeleton renderings.",
    "Two people interact with each other.",
    "The answer is {label}.",
)


def corpus_lines(class_names: list[str]) -> list[str]:
  """Training text: class names, synthetic action names and prompt sentences filled with them."""
  synthetic = list(SYNTHETIC_LABELS)
  synthetic += [f"{v} {s} {p}" for v, s, p in itertools.product(_VERBS, _SIDES, _PARTS)]
  synthetic += [f"{v} the {s} {p}" for v, s, p in itertools.product(_VERBS, _SIDES, _PARTS[:6])]
  synthetic += list(_WHOLE_BODY)
  labels = list(class_names) + synthetic
  lines = list(labels)
  for k, label in enumerate(labels):
    v, s, p = _VERBS[k % len(_VERBS)], _SIDES[k % 3], _PARTS[k % len(_PARTS)]
    picks = ", ".join(labels[(k + j * 7) % len(labels)] for j in range(5))
    for prompt in _PROMPTS:
      lines.append(prompt.format(i=k % 12 + 1, label=label, labels=picks, verb=v + "s", side=s,
                                 part=p))
  return lines


def build_tiny_tokenizer(class_names: list[str], out_dir: str | pathlib.Path = TINY_TOKENIZER_DIR,
                         vocab_size: int = 1536) -> pathlib.Path:
  """Trains the byte-level BPE on `corpus_lines(class_names)` and writes it to `out_dir`."""
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.post_processor = processors.ByteLevel(trim_offsets=False)
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                show_progress=False)
  tok.train_from_iterator(corpus_lines(class_names), trainer=trainer)
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  tok.save(str(out / "tokenizer.json"))
  config = {
      "tokenizer_class": "PreTrainedTokenizerFast",
      "model_max_length": 8192,
      "bos_token": None,
      "eos_token": "<|im_end|>",
      "pad_token": "<|endoftext|>",
      "unk_token": None,
      "additional_special_tokens": list(SPECIAL_TOKENS[1:]),
      "chat_template": INTERNVL2_5_TEMPLATE,
      "clean_up_tokenization_spaces": False,
  }
  with open(out / "tokenizer_config.json", "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
  return out


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--class_names", required=True,
                      help="JSON whose keys are the 120 NTU class names in order "
                           "(ntu120_similar_actions.json)")
  parser.add_argument("--out_dir", default=str(TINY_TOKENIZER_DIR))
  parser.add_argument("--vocab_size", type=int, default=1536)
  args = parser.parse_args(argv)
  path = pathlib.Path(args.class_names)
  if not path.is_file():
    raise FileNotFoundError(f"--class_names: {path} does not exist")
  with open(path, encoding="utf-8") as f:
    names = list(json.load(f))
  if len(names) != 120:
    raise ValueError(f"--class_names: {path} has {len(names)} keys, expected the 120 NTU classes")
  out = build_tiny_tokenizer(names, args.out_dir, args.vocab_size)
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
