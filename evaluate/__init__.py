"""The evaluation layer: MediTron's medical benchmarks (MMLU-Medical, PubMedQA, MedMCQA,
MedQA, MedQA-4) on a checkpoint the training layer exported, in top-token, chain-of-thought
and self-consistency modes, few-shot over seeds.

Modules: `config` (the YAML), `items` (scored items and shots, on corpus.benchmarks),
`prompts`, `parsing`, `backends` (the interface; `hf_backend`, `vllm_backend`), `report`
(scores and the table), `lakehouse` (eval/* Delta tables) and `harness` (the entry point:
`evaluate(config) -> EvalResult`, `python -m evaluate.harness --config FILE`).
"""
