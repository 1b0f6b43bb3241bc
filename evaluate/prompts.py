"""Prompts in MediTron's layout (epfLLM/meditron, evaluation/benchmarks.py and the paper's
appendix): the instruction, the shots, the question, then the answer cue.

    <instruction>
    Question: <shot question>

    Options:
    A. …
    The answer is: B

    Question: <question>

    Options:
    A. …
    The answer is:

A multiple-choice question ends in "?" when it has no closing punctuation, as MediTron's
`format_mcq` does; PubMedQA items give the abstract as "Context:" before the question.
The gold label of a shot is its letter (or yes/no/maybe), never its option text.

Top-token prompts end at the cue "The answer is:" and the option labels are scored as the
continuation " A" (with the space: a tokenizer sees "is: A" as "is", ":", " A" — the
SentencePiece "▁A" or byte-level "ĠA" — so the bare "A" would be a token the model
never saw in that place). Chain-of-thought prompts end at "Answer:" and shots show
"Answer: [explanation] The answer is: B"; the explanation is PubMedQA's long answer where
an item has one.

With `prompt_format: chatml` the instruction is the system turn, the shots and question the
user turn, and the cue opens the assistant turn (for fine-tuned chat models; MediTron
wrapped its fine-tuned models' prompts likewise).
"""

from __future__ import annotations

from collections.abc import Sequence

from corpus.benchmarks import PUBMEDQA, BenchmarkItem

__all__ = [
    "ANSWER_CUE",
    "COT_CUE",
    "build_prompt",
    "continuation",
    "format_question",
    "instruction",
    "stop_strings",
]

ANSWER_CUE = "The answer is:"
COT_CUE = "Answer:"
_MCQ_INSTRUCTION = (
    "You are a medical doctor answering real-world medical entrance exam questions. Based on"
    " your understanding of basic and clinical science, medical knowledge, and mechanisms"
    " underlying health, disease, patient care, and modes of therapy, answer the following"
    " multiple-choice question. Select one correct answer from A to {last}. Base your answer"
    " on the current and standard practices referenced in medical guidelines."
)
_PUBMEDQA_INSTRUCTION = (
    "As an expert doctor in clinical science and medical knowledge, can you tell me if the"
    " following statement is correct? Answer yes, no, or maybe."
)
_COT_INSTRUCTION = (
    ' Think step by step, then give your final answer as "The answer is: " followed by {what}.'
)
_IM_START, _IM_END = "<|im_start|>", "<|im_end|>"


def instruction(item: BenchmarkItem, cot: bool = False) -> str:
    """The benchmark's instruction, with the step-by-step request for chain of thought."""
    if item.benchmark == PUBMEDQA:
        text, what = _PUBMEDQA_INSTRUCTION, "yes, no or maybe"
    else:
        last = max(item.options)
        text, what = _MCQ_INSTRUCTION.format(last=last), f"the letter of one option (A to {last})"
    return text + (_COT_INSTRUCTION.format(what=what) if cot else "")


def format_question(item: BenchmarkItem) -> str:
    """The question block: MediTron's `format_mcq`, or context and question for PubMedQA."""
    question = item.question.strip()
    if item.benchmark == PUBMEDQA:
        return f"Context: {item.context}\nQuestion: {question}"
    if not question.endswith(("?", ".")):
        question += "?"
    options = "\n".join(f"{label}. {text}" for label, text in item.options.items())
    return f"Question: {question}\n\nOptions:\n{options}"


def continuation(label: str) -> str:
    """The text scored after a top-token prompt for an option label (see module doc)."""
    return f" {label}"


def _shot(item: BenchmarkItem, cot: bool) -> str:
    if not cot:
        return f"{format_question(item)}\n{ANSWER_CUE} {item.answer}"
    reasoning = f"{item.long_answer.strip()} " if item.long_answer else ""
    return f"{format_question(item)}\n{COT_CUE} {reasoning}{ANSWER_CUE} {item.answer}"


def build_prompt(
    item: BenchmarkItem,
    shots: Sequence[BenchmarkItem] = (),
    cot: bool = False,
    prompt_format: str = "plain",
) -> str:
    """The full prompt for `item`, with `shots` as in-context examples."""
    cue = COT_CUE if cot else ANSWER_CUE
    body = "\n\n".join([*(_shot(s, cot) for s in shots), format_question(item)])
    system = instruction(item, cot)
    if prompt_format == "plain":
        return f"{system}\n{body}\n{cue}"
    if prompt_format == "chatml":
        return (
            f"{_IM_START}system\n{system}{_IM_END}\n"
            f"{_IM_START}user\n{body}{_IM_END}\n"
            f"{_IM_START}assistant\n{'' if cot else cue}"
        )
    raise ValueError(f"unknown prompt_format {prompt_format!r}: plain or chatml")


def stop_strings(prompt_format: str) -> tuple[str, ...]:
    """Where a generated answer ends: the model starting the next example, or its turn's end."""
    stops = ("\nQuestion:", "\nContext:")
    return (*stops, _IM_END, _IM_START) if prompt_format == "chatml" else stops
