"""ScienceQA's files as RobustVLM ships and reads them (scienceqa_eval/, bash/eval_scienceqa.sh):

    llava_test_CQM-A.json   LLaVA's conversion of the test split: a list of {id, image (where the
                            question has one: "<id>/image.png"), conversations: [human, gpt]};
                            the human turn is "<image>\\nContext: ...\\n<question>\\nA. ...\\nB. ..."
    pid_splits.json         {split: [problem ids]}
    problems.json           {problem id: {question, choices, answer (index), ...}}
    <image folder>/<image>  the test images (eval_scienceqa.sh --image-folder .../test)

llava/eval/model_vqa_science.py asks the human turn (with '<image>' removed and stripped) and
llava/eval/eval_science_qa.py grades against problems.json's answer index for the problems of
the split; its IMG accuracy counts the questions whose prompt had an image. ScienceQA-IMG is
those: the entries of the LLaVA file with an image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchutil.errors import BenchError
from tasks.jsonfiles import field, read_json
from tasks.scienceqa_answers import OPTIONS

IMAGE_TAG = "<image>"


@dataclass(frozen=True)
class ScienceQAItem:
    id: str  # the problem id
    image: str  # relative to the image folder
    question: str  # the human turn without '<image>', stripped (model_vqa_science.py's prompt)
    choices: tuple[str, ...]
    answer: int  # index into choices


def read_scienceqa(llava_file: Path, pid_splits: Path, problems_file: Path, split: str = "test") -> list[ScienceQAItem]:
    """The questions with an image of `split`, in the LLaVA file's order."""
    entries = read_json(llava_file, "ScienceQA question")
    if not isinstance(entries, list):
        raise BenchError(f"{llava_file} is not a JSON list; LLaVA's ScienceQA files list one question per entry")
    splits = read_json(pid_splits, "ScienceQA split")
    in_split = set(field(splits, split, list, pid_splits, "the file"))
    problems = read_json(problems_file, "ScienceQA problem")
    if not isinstance(problems, dict):
        raise BenchError(f"{problems_file} is not a JSON object; ScienceQA's problems.json maps ids to problems")
    items = []
    for k, entry in enumerate(entries):
        where = f"entry {k}"
        pid = field(entry, "id", str, llava_file, where)
        if "image" not in entry:  # not part of ScienceQA-IMG
            continue
        if pid not in in_split:
            raise BenchError(f"{llava_file}: {where} (id {pid}) is not in split {split!r} of {pid_splits}; give the "
                             "files of one ScienceQA release")
        turns = field(entry, "conversations", list, llava_file, where)
        if not turns:
            raise BenchError(f"{llava_file}: {where} (id {pid}) has no conversation turns; the first one holds "
                             "the question")
        text = field(turns[0], "value", str, llava_file, f"{where}.conversations[0]")
        problem = problems.get(pid)
        if problem is None:
            raise BenchError(f"{problems_file} has no problem {pid!r} ({llava_file} {where}); give the files of one "
                             "ScienceQA release")
        choices = field(problem, "choices", list, problems_file, f"problem {pid}")
        answer = field(problem, "answer", int, problems_file, f"problem {pid}")
        if not all(isinstance(c, str) for c in choices) or not 2 <= len(choices) <= len(OPTIONS):
            raise BenchError(f"{problems_file}: problem {pid} needs 2 to {len(OPTIONS)} choices, each a string")
        if not 0 <= answer < len(choices):
            raise BenchError(f"{problems_file}: problem {pid} has answer {answer}, not the index of one of its "
                             f"{len(choices)} choices")
        items.append(ScienceQAItem(pid, field(entry, "image", str, llava_file, where),
                                   text.replace(IMAGE_TAG, "").strip(), tuple(choices), answer))
    return items
