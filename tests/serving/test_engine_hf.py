"""The serving engine over a transformers InternVL folder (`serve --hf`) generates what
transformers' own greedy `generate` does for the same prompt and frames, alone and when two
requests share a left-padded batch."""

import concurrent.futures
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory, hf_helpers):
  from skel_llm.serving import engine
  from skel_llm.train import defaults
  config = defaults.load_config(REPO / "configs" / "distill.py", "smoke")
  folder = tmp_path_factory.mktemp("hf")
  hf = hf_helpers._save_hf(folder, config)
  import torch
  torch.manual_seed(1)
  with torch.no_grad():  # more noise: with tied embeddings a near-fresh model repeats "\n"
    for p in hf.parameters():
      p.add_(0.3 * torch.randn_like(p))
  hf.save_pretrained(str(folder))
  e = engine.Engine.load_hf(config, str(folder), max_new_tokens=6, max_batch=2,
                            batch_wait_s=0.5)
  yield hf, e
  e.close()


def _reference(hf, e, job):
  import torch
  ids = e.encoder.prompt_ids(job.user)
  px = torch.as_tensor(job.frames.transpose(0, 3, 1, 2).copy())
  with torch.no_grad():
    out = hf.generate(input_ids=torch.as_tensor([ids]), attention_mask=torch.ones(1, len(ids),
                      dtype=torch.long), pixel_values=px, max_new_tokens=6, do_sample=False,
                      eos_token_id=e.encoder.im_end_id, pad_token_id=e.encoder.pad_id)
  new = out[0, len(ids):].tolist()
  if e.encoder.im_end_id in new:
    new = new[:new.index(e.encoder.im_end_id)]
  return e.encoder.decode(new), len(ids)


def test_replies_match_transformers_generate(served):
  from skel_llm.teachers import prompts
  hf, e = served
  rng = np.random.default_rng(0)
  bodies = [prompts.body("m", (rng.random((4, 24, 24, 3)) * 255).astype(np.uint8), label,
                         temperature=0, max_tokens=6)
            for label in ("squat", "raise the left arm over the head")]
  jobs = [e.parse(b) for b in bodies]
  want = [_reference(hf, e, j) for j in jobs]
  alone = [e.submit(j) for j in jobs]
  assert [(j.text, j.prompt_tokens) for j in alone] == want
  before = len(e.batches)
  with concurrent.futures.ThreadPoolExecutor(2) as pool:  # different lengths, one batch
    together = list(pool.map(lambda b: e.submit(e.parse(b)), bodies))
  assert e.batches[before:] == [2]
  assert [(j.text, j.prompt_tokens) for j in together] == want
  assert want[0][1] != want[1][1] and want[0][0] != want[1][0]
