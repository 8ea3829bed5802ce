"""VQA-format files read with each human answer's whole record, scored as OpenFlamingo scores them.

VizWiz and OK-VQA come in the VQAv2 format with two differences that matter to the reference:

* OpenFlamingo's VizWiz files (open_flamingo/eval/data/vizwiz/*_vqa_format.json) have no
  `answer_type` and no `answer_id`: each answer record is just {"answer", "answer_confidence"}.
  OpenFlamingo's evaluator (open_flamingo/eval/vqa_metric.py, VQAEval.evaluate) reads a missing
  answer_type as "other" and leaves an answer out of the leave-one-out average by dict inequality:
  `otherGTAns = [item for item in answers if item != gtAnsDatum]`, after normalising every
  `answer` in place. Without answer ids, every record equal to the left-out one (same normalised
  answer, same confidence) leaves with it. Ten "unanswerable"/"yes" records and the prediction
  "unanswerable" so score 0, not 100; nothing else is special about "unanswerable".
  With answer ids (VQAv2, TextVQA, OK-VQA) the rule is the usual leave-one-out.
* OK-VQA's records also carry `raw_answer` (the annotator's words; `answer` is their stem).

`read_answer_records` keeps each record's other fields, `openflamingo_record_accuracy` applies
the evaluator's rule to them, and `RecordedVQATask` scores with it and asks the VLM with the
dataset's own question template where the VLM has one (RobustVLM's LLaVA asks VizWiz with an
extra instruction: bench/vlm/projected.py Prompts.dataset_questions).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from benchutil.errors import BenchError
from tasks.answering import VQATask
from tasks.demonstrations import lazy_pool
from tasks.jsonfiles import field, read_json
from tasks.vlm_task import Scorer, VLMPrompts
from tasks.vqa import VQAItem, answer_type

AnswerFields = dict[str, Any]  # an answer record without its "answer"


@dataclass(frozen=True)
class RecordedItems:
    items: list[VQAItem]
    fields: dict[int, list[AnswerFields]]  # question_id -> each answer's other fields, in file order


def _answers(annotation: dict, path: Path, where: str) -> tuple[list[str], list[AnswerFields]]:
    records = field(annotation, "answers", list, path, where)
    if not records:
        raise BenchError(f"{path}: {where} has no answers; each question needs its human answers")
    answers, others = [], []
    for k, record in enumerate(records):
        answers.append(field(record, "answer", str, path, f"{where}.answers[{k}]"))
        others.append({key: value for key, value in record.items() if key != "answer"})
    return answers, others


def read_answer_records(questions_path: Path, annotations_path: Path) -> RecordedItems:
    """Questions paired with their annotation by question_id, as the evaluator pairs them; a
    question without annotation or answers, or a record without its fields, is one line."""
    questions = field(read_json(questions_path, "questions"), "questions", list, questions_path, "the file")
    annotations = field(read_json(annotations_path, "annotations"), "annotations", list, annotations_path,
                        "the file")
    by_id: dict[int, tuple[list[str], list[AnswerFields], str, str]] = {}
    for i, a in enumerate(annotations):
        where = f"annotations[{i}]"
        answers, others = _answers(a, annotations_path, where)
        by_id[field(a, "question_id", int, annotations_path, where)] = (
            answers, others, field(a, "question_type", str, annotations_path, where),
            answer_type(a, annotations_path, where))  # VizWiz's files have none: "other"
    items, fields = [], {}
    for i, q in enumerate(questions):
        where = f"questions[{i}]"
        qid = field(q, "question_id", int, questions_path, where)
        if qid not in by_id:
            raise BenchError(f"{questions_path}: {where} (question_id {qid}) has no annotation in {annotations_path}")
        answers, others, question_type, atype = by_id[qid]
        items.append(VQAItem(qid, field(q, "image_id", (int, str), questions_path, where),
                             field(q, "question", str, questions_path, where), answers, question_type, atype))
        fields[qid] = others
    return RecordedItems(items, fields)


def openflamingo_record_accuracy(prediction: str, answers: list[str], fields: list[AnswerFields]) -> float:
    """VQA accuracy in [0, 1] as OpenFlamingo's VQAEval.evaluate computes it from answer records:
    both sides cleaned and normalised; for each record, min(1, matches / 3) among the records not
    equal to it (its normalised answer and every other field), averaged over the records."""
    from tasks.metrics import clean_answer, normalised_answer  # the evaluator's, shared with vqa_accuracy

    if not answers or len(answers) != len(fields):
        raise BenchError("VQA accuracy needs the human answer records; got none for a question")
    records = [(normalised_answer(clean_answer(a)), f) for a, f in zip(answers, fields)]
    pred = normalised_answer(clean_answer(prediction))
    accs = [min(1, float(sum(1 for other in records if other != left_out and other[0] == pred)) / 3)
            for left_out in records]
    return float(sum(accs)) / len(accs)


@runtime_checkable
class DatasetQuestions(Protocol):
    """A VLM prompt style that may hold a dataset's own question template (bench/vlm/projected.py Prompts)."""

    def question_for(self, dataset: str | None) -> str: ...


def question_template(style: VLMPrompts, dataset: str | None) -> str:
    return style.question_for(dataset) if isinstance(style, DatasetQuestions) else style.question


class RecordedVQATask(VQATask):
    """A VQA task scored from whole answer records (OpenFlamingo's evaluator, `vqa_metric`
    "openflamingo"), asking with the dataset's question template (`prompt_key`)."""

    def __init__(self, name: str, recorded: RecordedItems, image_path: Callable[[VQAItem], Path], prompt_key: str,
                 **options: Any) -> None:
        if options.get("vqa_metric", "openflamingo") != "openflamingo":
            raise BenchError(f"{name} is scored from answer records by OpenFlamingo's evaluator only; "
                             f"vqa_metric {options['vqa_metric']!r} does not apply")
        super().__init__(name, recorded.items, image_path, **{**options, "vqa_metric": "openflamingo"})
        self.answer_fields = {str(qid): others for qid, others in recorded.fields.items()}
        self.prompt_key = prompt_key  # the dataset's key in a VLM's per-dataset question templates

    def question_template(self, style: VLMPrompts) -> str:
        return question_template(style, self.prompt_key)

    def scorer(self, ids: list[str]) -> Scorer:
        def score(outputs: dict[str, str]) -> dict[str, float]:
            return {i: 100 * openflamingo_record_accuracy(text, self.items[i].answers, self.answer_fields[i])
                    for i, text in outputs.items()}

        return score


def train_pairs(questions: Path, annotations: Path) -> list[tuple[str, str]]:
    """(question, first answer) per training question, in the questions file's order: the
    demonstrations' source (VQADataset(is_train=True) reads `answers[0]`)."""
    return [(it.question, it.answers[0]) for it in read_answer_records(questions, annotations).items]


def with_train_demonstrations(task: VQATask, questions: Path, annotations: Path, fetch: str) -> VQATask:
    """Demonstrations (for VLMs whose prompts carry them) from the training split's files."""
    task.demonstration_pool = lazy_pool(lambda: train_pairs(questions, annotations), [questions, annotations], fetch)
    return task
