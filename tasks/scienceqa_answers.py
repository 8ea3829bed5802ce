"""ScienceQA's answer parsing as llava/eval/eval_science_qa.py does it (RobustVLM's copy).

An output counts as the letter it names when it is exactly a letter of the options, or
begins with a letter followed by ". ", or contains "The answer is X." exactly once; anything
else is "FAILED". The letter is then the index of a choice only within the problem's own
choices (`get_pred_idx`; a letter beyond them is -1), and the answer is right when that index
is the problem's answer. An unparseable output is simply wrong (the reference's random guess
after `return -1` is never reached).

The tiny VLM writes lower case only (its codec lower-cases every word), so the tiny suite
reads a one-letter output in either case (`letters_any_case`); the paper suite reads as the
reference does.
"""
from __future__ import annotations

import re

OPTIONS = ("A", "B", "C", "D", "E")  # eval_science_qa.py's --options default
FAILED = "FAILED"
_STATED = re.compile(r"The answer is ([A-Z]).")


def parse_answer(text: str, letters_any_case: bool = False) -> str:
    """The letter an output names, or "FAILED"."""
    if letters_any_case and text.upper() in OPTIONS:
        text = text.upper()
    if text in OPTIONS:
        return text
    if len(text) >= 3 and text[0] in OPTIONS and text[1:3] == ". ":
        return text[0]
    found = _STATED.findall(text)
    return found[0] if len(found) == 1 else FAILED


def prediction_index(letter: str, n_choices: int) -> int:
    """get_pred_idx: the choice a letter names, -1 when it names none of the problem's choices."""
    return OPTIONS.index(letter) if letter in OPTIONS[:n_choices] else -1
