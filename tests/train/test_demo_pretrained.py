"""Pins the `demo_pretrained` presets (skel_llm/train/defaults.py, configs/*.py): the four
stages start from the committed pretrained tiny InternVL with the paper's freezing rules, and
are evaluated on unseen classes only."""

import re
import shutil

import jax
import numpy as np
import pytest
import safetensors.numpy

from skel_llm.data import sources
from skel_llm.eval import data as eval_data
from skel_llm.eval import options
from skel_llm.models import pretrained, safetensors_io
from skel_llm.train import defaults, trainer
from tests.conftest import REPO

# The paper's rules (docs/method.md §4): ViT and base LLM frozen throughout; renderer +
# projector in stages 1-2, + LoRA in 3; projector + LoRA in 4.
RULES = {"warmup": {"renderer", "projector"}, "disc_ft": {"renderer", "projector"},
         "distill": {"renderer", "projector", "lora"}, "refine": {"projector", "lora"}}


DEMO_SEEN = defaults.DEMO_PRETRAINED_SEEN


def _kind(path):
  if path.startswith("renderer/"):
    return "renderer"
  if path.startswith("mllm/multi_modal_projector/"):
    return "projector"
  if re.fullmatch(r"mllm/.*/lora_[ab]", path):
    return "lora"
  return "base:" + path.split("/")[1]


def _config(stage):
  return defaults.load_config(REPO / "configs" / f"{stage}.py", "demo_pretrained")


@pytest.mark.parametrize("stage", list(RULES))
def test_each_stage_trains_what_the_paper_trains_on_seen_and_evaluates_unseen(stage):
  c = _config(stage)
  run = trainer.Run(c, devices=jax.devices()[:1])
  trained = {_kind(p) for p in run.layout.trainable_paths}
  frozen = {_kind(p) for p in run.layout.frozen_paths}
  assert trained == RULES[stage]
  assert {"base:vision_tower", "base:language_model"} <= frozen
  assert not any(k in ("projector", "lora") for k in frozen)
  names = run.train_source.class_names
  assert {names[i] for i in run.train_source.candidate_ids} == set(defaults.DEMO_PRETRAINED_SEEN)
  assert c.data.eval_classes == defaults.DEMO_PRETRAINED_UNSEEN
  if stage == "warmup":
    assert c.init_from == "hf:" + str(pretrained.ASSET_DIR)
  for name in c.evals:
    prompt = c.evals[name].get("prompt", "")
    assert prompt in ("", "mqa"), name  # zero-shot reads pick among the unseen names
  assert c.data.eval_task == "mqa"
  # Every recognition read has its validation twin on held-out seeds of the seen classes.
  recognition = {n for n in c.evals if c.evals[n].type == "recognition"}
  assert recognition == {"heldout", "heldout_score", "heldout_seen", "heldout_score_seen"}
  for name in recognition:
    ev = options.with_defaults(name, c.evals[name])
    d = eval_data.data_config(c.data, ev.data, num_clips=ev.num_clips, prompt="mqa")
    source = sources.make_source(d, "eval")
    want = DEMO_SEEN if name.endswith("_seen") else defaults.DEMO_PRETRAINED_UNSEEN
    assert {names[i] for i in source.candidate_ids} == set(want), name
    assert ev.method == ("score" if "score" in name else "decode"), name
    if name.endswith("_seen"):
      assert ev.every_steps == 0, name  # at the stage's end


def test_stage_one_loads_the_asset_and_refuses_a_corrupted_copy(tmp_path):
  c = _config("warmup")
  run = trainer.Run(c, devices=jax.devices()[:1])
  state, start = run.restore_or_init(None)
  assert start == 0
  # The reference: the asset's tensors read straight from the file (transformers names).
  raw = {}
  for file in safetensors_io.weight_files(pretrained.ASSET_DIR):  # the asset's shards
    raw.update(safetensors.numpy.load_file(str(file)))
  got = state["frozen"]["mllm"]
  np.testing.assert_array_equal(np.asarray(got["language_model"]["embed_tokens"]),
                                raw["language_model.model.embed_tokens.weight"])
  np.testing.assert_array_equal(np.asarray(got["vision_tower"]["position_embeddings"]),
                                raw["vision_tower.embeddings.position_embeddings"])
  np.testing.assert_array_equal(
      np.asarray(state["params"]["mllm"]["multi_modal_projector"]["linear_1"]["kernel"]),
      raw["multi_modal_projector.linear_1.weight"].T)

  bad = tmp_path / "asset"
  shutil.copytree(pretrained.ASSET_DIR, bad)
  shard = bad / "model-00003-of-00003.safetensors"
  data = bytearray(shard.read_bytes())
  data[-5] ^= 0x10
  shard.write_bytes(bytes(data))
  c.init_from = f"hf:{bad}"
  with pytest.raises(ValueError, match=r"model-00003-of-00003\.safetensors: sha256 .* differs"):
    trainer.Run(c, devices=jax.devices()[:1]).restore_or_init(None)
