"""The pretraining layer: a megatron-core GPT trained from the corpus shards.

Modules (heavy imports stay inside them, so ``train.config`` and ``train.launch`` load
without torch):

- ``config``: the YAML run configuration (pydantic, unknown keys rejected).
- ``shards``: ``blends.json`` and the tokenizer meta of a shards directory (no torch).
- ``data``: the megatron-core ``GPTDataset`` splits built from them.
- ``cpu_compat``: the adaptations megatron-core 0.16 needs to run on a CPU.
- ``session``: the single-process megatron-core session (process group, model parallel
  state, RNG seeds) and its teardown.
- ``model``: the Llama-style ``GPTModel``.
- ``checkpoint``: exactly resumable checkpoints.
- ``metrics``: the JSONL loss log and the loss-curve plot.
- ``hf_export``: the Hugging Face ``LlamaForCausalLM`` export.
- ``pretrain``: the training loop, ``pretrain(config)`` and ``python -m train.pretrain``.
- ``launch``: the Megatron-LM ``torchrun`` command line for real GPU runs.
- ``synthetic``: small synthetic shards directories for tests and checks.
- ``gpu_check``: a short bf16 run on a CUDA machine, printing tokens/s as JSON.
"""
