"""Pins skel_llm/pretrain/probe.py on the committed asset: it scores what the asset's
pretraining loss scores (the corpus's `choice` sample, teacher-forced), on clips outside the
corpus's and the stage runs' seeds, with each protocol's classes and candidates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skel_llm.pretrain import corpus, probe
from skel_llm.train import defaults


@pytest.fixture(scope="module")
def asset():
  return probe.Asset.load()


def _teacher_forced(asset, frames, user, answer):
  """Summed log p of the answer tokens (and the end token) under a full forward of the
  pretraining encoding `encoder.encode(user, answer)`: the pretraining loss's terms."""
  e = asset.encoder.encode(user, answer)
  logits = asset.model(jnp.asarray(e.input_ids[None]), jnp.asarray(e.input_mask[None]),
                       jnp.asarray(probe.pixel_values(frames[None])))
  logp = jax.nn.log_softmax(logits[0, :-1].astype(jnp.float32), axis=-1)
  token = jnp.take_along_axis(logp, jnp.asarray(e.input_ids[1:, None]), axis=1)[:, 0]
  return float(jnp.sum(token * e.loss_mask[1:]))


def test_the_probe_scores_what_the_pretraining_loss_scores(asset):
  (name, seed, frames, order, user), = probe.questions(asset, ("raise left leg",),
                                                      defaults.DEMO_PRETRAINED_UNSEEN, 1)
  assert seed == probe.SEED_BASE and sorted(order) == sorted(defaults.DEMO_PRETRAINED_UNSEEN)
  # The corpus's own question text over these candidates, in the clip's drawn order.
  assert user == corpus.choice_question(asset.spec.num_frames, order)
  assert "Candidates: " + "; ".join(order) + "." in user
  names = ["raise left leg", "swing right arm", "bend left leg"]
  got = probe.score(asset, frames[None], [user], names)[0]
  want = [_teacher_forced(asset, frames, user, f"Label: {n}") for n in names]
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_protocols_draw_new_clips_of_their_classes():
  p = probe.protocols()
  seen, unseen = defaults.DEMO_PRETRAINED_SEEN, defaults.DEMO_PRETRAINED_UNSEEN
  assert p["seen"] == (seen, seen) and p["unseen"] == (unseen, unseen)
  assert p["unseen_in_all"] == (unseen, seen + unseen)
  assert set(seen) <= set(corpus.PRETRAIN_CLASSES)  # named in pretraining
  assert not set(unseen) & set(corpus.PRETRAIN_CLASSES)  # never named in pretraining
  # Seeds beyond the corpus's (seed_base + sample index, steps x batch of them) and beyond
  # the stage runs' evaluation seeds (10,000,000 + i, far fewer than 10M clips).
  spec = corpus.CorpusSpec()
  assert probe.clip_seed(0, 0) > spec.seed_base + 1_000_000
  assert probe.clip_seed(19, 999) < probe.SEED_BASE + 20_000


def test_a_protocol_reports_ranking_and_greedy_replies(asset):
  r = probe.run_protocol(asset, "unseen", clips=1)
  assert r["clips"] == 8 and r["candidates"] == 8 and r["chance"] == 0.125
  assert 0.0 <= r["top1"] <= r["top5"] <= 1.0 and 0.0 <= r["strict"] <= 1.0
  assert sum(r["replies"].values()) == 8
  # The ranking is a function of the asset and the clips: a second run is bitwise the same.
  assert probe.run_protocol(asset, "unseen", clips=1) == r


def test_the_pretraining_protocol_reads_the_corpus_own_choice_samples(asset):
  items = probe.pretraining_questions(asset, 5)
  c = corpus.Corpus(asset.spec, asset.encoder)
  for truth, g, frames, cands, user in items:
    want_frames, want_user, answer, _ = c.example(g)
    assert user == want_user and answer == f"Label: {truth}" and truth in cands
    np.testing.assert_array_equal(frames, want_frames)
    assert 4 <= len(cands) <= 8 and not set(cands) & set(defaults.DEMO_PRETRAINED_UNSEEN)
  # Trained on: the committed asset saw samples 0 .. steps x batch - 1.
  assert items[-1][1] < asset.record["steps"] * asset.record["config"]["batch_size"]


def test_the_picture_effect_is_the_score_change_over_black_frames(asset):
  r = probe.run_protocol(asset, "unseen", clips=1)
  assert r["picture_effect"] == float(np.median(r["picture_effects"]))
  # Clip 0 recomputed from full forwards: max over the candidates of |log p(its frames) -
  # log p(black frames)|.
  (_, _, frames, _, user), = probe.questions(asset, defaults.DEMO_PRETRAINED_UNSEEN[:1],
                                             defaults.DEMO_PRETRAINED_UNSEEN, 1)
  want = max(abs(_teacher_forced(asset, frames, user, f"Label: {n}")
                 - _teacher_forced(asset, np.zeros_like(frames), user, f"Label: {n}"))
             for n in defaults.DEMO_PRETRAINED_UNSEEN)
  assert r["picture_effects"][0] == pytest.approx(want, abs=2e-4)
