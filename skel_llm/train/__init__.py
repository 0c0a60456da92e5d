"""Training: the pure sharded train step, optimiser, checkpoints and the trainer loop.

- `step.make_train_step(graphdef, rng_vars, tx, forward)` -> `train_step(state, batch, rng)
  -> (state, metrics)`; state = {step, params (trainable), frozen, opt_state}, metrics = loss,
  accuracy, l2_grads, l2_params, l2_updates, lr, answer_tokens, render_overflow.
- `model.SkeletonLLM(renderer, mllm, ...)`: DrAction + InternVL3 as one NNX module (paths
  `renderer/...`, `mllm/...`); `model.forward(model, batch, rng, training) -> logits`;
  `model.forward_with_stats` -> (logits, {render_overflow}), the step's forward.
- `state.build_layout` / `state.init_state`: eval_shape-first abstract state, trainable/frozen
  split by regex (`config.trainable`), shardings, jitted init with out_shardings.
- `sharding`: (data, fsdp, tensor) mesh, logical-axis rules -> PartitionSpecs.
- `optimizer`: AdamW + warm-up/cosine + weight decay + global-norm clipping.
- `checkpoint.Checkpointer`: orbax CheckpointManager (state + data position);
  `checkpoint.restore_variables_from`: stage chaining (`config.init_from`).
- `trainer.Run(config)` builds everything; `trainer.train_and_evaluate(config, workdir)` runs a
  stage (resume, progress bar, TensorBoard, PNG strips, final evaluation, exports).
- `defaults.base(arg)`: the shared base of `configs/*.py` (demo / paper / smoke presets).
- `progress.Progress`: the progress line (compiling, step time, ETA from the steps after the
  compile step); `summary`: TensorBoard scalars and images, the labelled PNG strips.
- `cli.check_config_args(argv)`: one-line errors for `--config` mistakes before absl parses.
"""
