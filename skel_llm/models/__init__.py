"""Flax NNX InternVL3: InternViT, pixel-shuffle projector, Qwen2.5, LoRA, checkpoints.

Quick use (tiny random model + the committed tiny tokenizer)::

  from flax import nnx
  from skel_llm import models

  config = models.tiny_config(image_size=448)         # or internvl3_1b() / _2b() / _8b()
  model = models.InternVL(config, rngs=nnx.Rngs(0))
  tok = models.load_tokenizer(models.TINY_TOKENIZER_DIR)
  logits = model(input_ids, attention_mask, pixel_values)   # float32[B, L, V]

  model, tok, config = models.load_pretrained("/path/to/InternVL3-8B-hf", dtype="bfloat16")
  # Either layout (transformers `*-hf` or original InternVLChatModel); optional
  # `shardings=lambda path, var: NamedSharding(...)` places each tensor as it is read.

Inputs follow transformers: `input_ids int32[B, L]`, `attention_mask [B, L]` (1 = real),
`pixel_values float32[N, 3, H, W]` in [0, 1] or normalised, as the caller decides (InternVL's
processor normalises with ImageNet mean/std; SkeletonLLM feeds renders unnormalised). Each image
is written in the prompt as `<img>` + `config.num_image_token` x `<IMG_CONTEXT>` + `</img>`;
the k-th `<IMG_CONTEXT>` takes visual token k (row-major over the batch). For training,
`pixel_values float32[B, F, 3, H, W]` (F frames per sample) fills each row's placeholders
with its own frames only. `model.hidden_states(...)` gives the final-normed states and
`model.logits(h)` the float32 logits, for losses restricted to answer tokens.

Generation and ranking (jitted, static shapes, KV cache):
  `generate(model, ids, mask, pixel_values, max_new_tokens=16, temperature=0., top_p=1.,
  stop_tokens=(...), pad_id=...)` -> int32[B, max_new_tokens];
  `score_candidates(model, prefix_ids, prefix_mask, pixel_values, cand_ids[B, C, M],
  cand_mask)` -> float32[B, C] summed log-probabilities (prefix run once, cache reused).

Training with NNX used functionally: `graphdef, params, rest = nnx.split(model, nnx.Param, ...)`;
`nnx.merge(graphdef, params, rest)` inside the jitted step. Parameter paths (for regex
selection of what trains) look like
  `vision_tower/layers/3/attention/q_proj/kernel`,
  `multi_modal_projector/linear_1/kernel`,
  `language_model/layers/5/self_attn/q_proj/lora_a` (LoRA: `nnx.LoRAParam`, names `lora_a`,
  `lora_b`; created when `config.lora = LoRAConfig(rank, alpha, dropout, targets)`),
  `language_model/embed_tokens`, `lm_head` (absent when embeddings are tied).
LoRA dropout is off unless the model is switched to training (`model.train()`); its masks come
from per-adapter 'dropout' RNG streams held in the module (non-Param state `nnx.RngKey` /
`nnx.RngCount`, paths ending `lora_dropout/rngs/...`): in a pure train step return the updated
non-Param state from the step (each call advances the counts), so masks differ between steps.
`merge_lora(model)` folds the adapters into the base kernels in place; `export_hf` folds them
on export.

Logical axis names (the `out_sharding` metadata of every variable; `nnx.get_partition_spec(
nnx.state(model))` returns them as PartitionSpecs; variables are created with
`eager_sharding=False`, so map them to mesh axes yourself):
  text: `vocab`, `embed`, `heads` (= heads x head_dim, flattened), `kv_heads`
    (= kv heads x head_dim), `mlp`;
  vision: `vision_patch` (3 x P x P), `vision_pos` (1 + patches), `vision_embed`,
    `vision_heads` (= heads x head_dim), `vision_mlp`;
  projector: `projector_in` (4 x vision width), `projector_hidden` (= text width);
  LoRA: `lora_rank`;  `None` on the size-1 leading axes of `cls_token` / `position_embeddings`.

Configuration (`InternVLConfig`, frozen dataclass): `vision` (VisionConfig), `text`
(TextConfig), `image_size` (the frames' resolution; position embeddings are interpolated when
it differs from `vision.image_size`), `patch_size`, `downsample_ratio`, `num_image_token`,
`image_token_id`, `dtype`, `param_dtype`, `remat`, `lora`. Change fields with
`config.replace(...)`.
"""

from skel_llm.models.checkpoint import export_hf, load_pretrained
from skel_llm.models.config import (
    LORA_TARGETS,
    InternVLConfig,
    LoRAConfig,
    TextConfig,
    VisionConfig,
    internvl3_1b,
    internvl3_2b,
    internvl3_8b,
    tiny_config,
)
from skel_llm.models.generate import generate, score_candidates
from skel_llm.models.internvl import InternVL, merge_lora
from skel_llm.models.tokenizer import (
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    TINY_TOKENIZER_DIR,
    load_tokenizer,
)

__all__ = [
    "IMG_CONTEXT", "IMG_END", "IMG_START", "LORA_TARGETS", "TINY_TOKENIZER_DIR", "InternVL",
    "InternVLConfig", "LoRAConfig", "TextConfig", "VisionConfig", "export_hf", "generate",
    "internvl3_1b", "internvl3_2b", "internvl3_8b", "load_pretrained", "load_tokenizer",
    "merge_lora", "score_candidates", "tiny_config",
]
