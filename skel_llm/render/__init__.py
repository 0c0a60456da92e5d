"""DrAction: the differentiable Gaussian-splatting skeleton renderer.

Glossary: B clips, T frames of a full sequence, n selected frames (12),
P persons (<= 2), J joints, K Gaussians per person, S image side.

Conventions (camera, Gaussians, appearance, compositing) are those of the
authors' release, written down in docs/method.md §2
and reproduced to <= 1e-4 (dense) / one grey level (tiled) by tests/render.

Pure functions (all float32, jit- and vmap-safe):

    weights = load_released("draction_candidate_01.safetensors")  # {'params', 'buffers'}
    frames = render(weights, poses, vels, image_size=448)          # float32[n, S, S, 3]
    frames, overflow, pairs = render_with_stats(weights, poses, vels, image_size=448)
    frames, overflow, pairs = render_batch(weights, poses_b, vels_b, image_size=448)  # [B, n, ...]

`poses`/`vels` are float32[n, P, J, 3] already-selected frames in camera
metres (an absent person all zeros). `dense=True` is the exact slow path; the
default is tiled splatting whose `overflow` (int32[n]) must be 0 for exact
frames: log/report it (pass a larger `capacity=` if it is not).

NNX module (for training):

    model = DrAction("ntu25", enable_nfm=True, rngs=nnx.Rngs(0))   # fresh
    model = DrAction.from_released(path)                           # released weights
    frames = model(poses, vels, image_size=448)        # [n, ...] or [B, n, ...] in, same out
    graphdef, params, buffers = nnx.split(model, nnx.Param, Buffer)
    # inside the jitted step: nnx.merge(graphdef, params, buffers)(poses, vels, image_size=448)
    # gradients w.r.t. `params` only; `Buffer`s are fixed.

Frame selection: two equivalent forms.
* Host, numpy (variable-length sequences): `skel_llm.skeleton.sampling.select_frames(
  positions, 12, rng=np_rng)` -> (poses, vels, indices).
* Inside jit on padded sequences float32[B, T, P, J, 3] with true lengths
  int32[B]: `frames.select_frames_batch(positions, lengths, 12, rng=key)`
  (rng=None: segment midpoints for evaluation). Static shapes throughout.

Placement before rendering (host, numpy): `camera.place(positions, rule, topology)` with
rule 'kinect' (z + 1 when the median z < 0.5), 'humanml3d' (centre y, median depth 2.5 m),
'normalise' (+y up, centred, first person 1.7 m tall at 3.5 m: 2D, pixels, other up axes),
'none', or 'auto' (chosen from the topology's units, up axis and 2D flag). Training,
evaluation (`config.data.placement`), the tools and the server all place clips through it.
Training augmentation inside jit: `camera.random_view_rotation(key, poses, vels)`.

Other topologies: `layout.build_layout(name, samples_per_bone=10 | 'proportional')`
gives the buffers; `checkpoint.transfer(weights, layout)` moves learned
appearance across topologies; `checkpoint.export_released` writes the release
format back. Mixed-format batches (rows of several topologies, one renderer's parameters):
`mixed.build(primary, samples_per_bone, topologies)` and `mixed.render_batch(weights,
topology_rows, poses, vels, mixed=...)`, each row drawn with its own padded layout.
"""

from skel_llm.render.checkpoint import export_released, load_released, transfer
from skel_llm.render.layout import GaussianLayout, build_layout
from skel_llm.render.module import Buffer, DrAction
from skel_llm.render.renderer import render, render_batch, render_with_stats

__all__ = [
    "Buffer", "DrAction", "GaussianLayout", "build_layout", "export_released", "load_released",
    "render", "render_batch", "render_with_stats", "transfer",
]
