"""ScienceQA-IMG: multiple-choice science questions with an image, graded by the option's letter.

As RobustVLM evaluates LLaVA (bash/eval_scienceqa.sh -> llava/eval/model_vqa_science.py): the
prompt is the question of llava_test_CQM-A.json as it stands (context, question and the
lettered options; the script passes no --single-pred-prompt, so no answer instruction is
added), in the vicuna_v1 conversation; greedy decoding of at most 1024 new tokens; the image
resized and centre-cropped by the CLIP image processor (model_vqa_science.py calls
image_processor.preprocess directly, not process_images, so it is not padded to a square
as POPE's and RobustVLM's other LLaVA images are). eval_science_qa.py parses the letter
(tasks/scienceqa_answers.py); a sample scores 100 when it names the right choice, else 0,
and the cell is their mean, the paper's IMG accuracy.

Under attack (our extension: the paper reports clean ScienceQA only), the untargeted passes
lower the likelihood of the right letter and targeted members push each sample towards
each wrong letter of its choices, one pass each.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError
from tasks.base import AttackSettings, Models, Record, Victim
from tasks.scienceqa_answers import OPTIONS, parse_answer, prediction_index
from tasks.scienceqa_files import ScienceQAItem, read_scienceqa
from tasks.vlm_task import Scorer, VLMPrompts, VLMTask

SCIENCEQA_ANSWER_TOKENS = 1024  # model_vqa_science.py's max_new_tokens


class ScienceQATask(VLMTask):
    kind = "multiple choice"
    metric = "IMG acc"

    def __init__(self, name: str, items: list[ScienceQAItem], image_folder: Path, answer_tokens: int | None = None,
                 letters_any_case: bool = False) -> None:
        self.items = {it.id: it for it in items}
        super().__init__(name, {k: image_folder / it.image for k, it in self.items.items()})
        self.answer_tokens = answer_tokens  # None: the VLM's own answer length (tiny suite)
        self.letters_any_case = letters_any_case  # the tiny VLM writes lower case (tasks/scienceqa_answers.py)
        self.settings = {"answer_tokens": answer_tokens, "letters": "any case" if letters_any_case else "as written"}

    def victim(self, models: Models, cache_dir: Any) -> Victim:
        """The VLM without LLaVA's padding: model_vqa_science.py crops ScienceQA's images."""
        return replace(super().victim(models, cache_dir), load_options={})

    def prompts(self, ids: list[str], style: VLMPrompts) -> list[str]:
        """The question as it stands, its options included (model_vqa_science.py). The reference asks
        LLaVA only; a VLM whose zero-shot prompts carry text-only demonstrations is refused."""
        if style.demonstrations:
            raise BenchError(f"{self.name} follows RobustVLM's LLaVA protocol (the question as the whole prompt); "
                             f"this VLM's prompts carry {style.demonstrations} demonstrations, which it has none of; "
                             "use a LLaVA-style VLM")
        return [self.items[i].question for i in ids]

    def max_new_tokens(self, style: VLMPrompts) -> int:
        return self.answer_tokens or style.answer_tokens

    def length_penalty(self, style: VLMPrompts) -> float:
        return style.answer_length_penalty

    def letter(self, sample_id: str) -> str:
        return OPTIONS[self.items[sample_id].answer]

    def attack_targets(self, ids: list[str]) -> list[list[str]]:
        return [[self.letter(i)] for i in ids]

    def push_targets(self, ids: list[str]) -> list[list[str]]:
        return [[OPTIONS[k] for k in range(len(self.items[i].choices)) if k != self.items[i].answer] for i in ids]

    def parsed(self, text: str) -> str:
        return parse_answer(text, self.letters_any_case)

    def scorer(self, ids: list[str]) -> Scorer:
        def score(outputs: dict[str, str]) -> dict[str, float]:
            return {i: 100.0 * (prediction_index(self.parsed(text), len(self.items[i].choices))
                                == self.items[i].answer) for i, text in outputs.items()}

        return score

    def attack(self, victim: Any, ids: list[str], batch: Any, settings: AttackSettings) -> list[Record]:
        """The records, each with the right letter and the letters parsed from both outputs."""
        records = super().attack(victim, ids, batch, settings)
        for record in records:
            record |= {"answer": self.letter(record["id"]), "clean_parsed": self.parsed(record["clean_output"]),
                       "adv_parsed": self.parsed(record["adv_output"])}
        return records


def scienceqa_reader(folder: str, questions: str = "llava_test_CQM-A.json", image_folder: str = "test",
                     answer_tokens: int | None = None, letters_any_case: bool = False, split: str = "test"
                     ) -> Callable[[str, Path], ScienceQATask]:
    """(name, data root) -> the task: the questions of `split` in root/folder/{questions, pid_splits.json,
    problems.json}, images in root/folder/image_folder (tasks/scienceqa_files.py)."""
    def read(name: str, root: Path) -> ScienceQATask:
        base = root / folder
        items = read_scienceqa(base / questions, base / "pid_splits.json", base / "problems.json", split)
        return ScienceQATask(name, items, base / image_folder, answer_tokens, letters_any_case)

    return read
