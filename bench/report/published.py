"""The papers' published tables (bench/report/published/<paper>.toml), read and checked.

Each file holds one paper: where its numbers come from (repository, commit, file, section) and
its tables. A table has the paper's columns (each mapped onto our task names, on the paper suite
and on the tiny suite), its threats ("clean", "2/255", ...), the settings the paper's code ran
with (attack, VLM protocol, precision, steps, samples), and groups of rows (one per VLM, or
"CLIP-only"), each row a vision encoder with the published value of every (threat, column). A
value the paper has but its repository does not print is NOT_TRANSCRIBED: the layout is kept, no
number is invented. docs/published.md describes the fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError, unknown

FOLDER = Path(__file__).resolve().parent / "published"
PAPERS = ("sim-clip", "fare", "delta-clip")
NOT_TRANSCRIBED = "not transcribed"
Published = float | str  # a number, or NOT_TRANSCRIBED


@dataclass(frozen=True)
class Column:
    label: str  # the paper's header
    metric: str
    task: str | None  # our paper-suite task, or None for an average
    average_of: tuple[str, ...]  # the tasks an average column averages (the zero-shot average)
    tiny: str | None  # the tiny suite's stand-in task (None: no tiny replica of this column)
    tiny_average_of: tuple[str, ...]
    samples: int | None  # how many samples the paper's code evaluated (None: every one)


@dataclass(frozen=True)
class Row:
    label: str  # the paper's name of the encoder
    encoder: str | None  # our paper-suite encoder (None: not in our zoo, see note)
    tiny: str | None  # the tiny zoo's stand-in
    note: str
    values: dict[str, tuple[Published, ...]]  # threat -> one value per column


@dataclass(frozen=True)
class Group:
    label: str  # "LLaVA 1.5", "CLIP-only"
    vlm: str | None  # our VLM (None: the encoder alone, zero-shot classification)
    tiny_vlm: str | None
    samples: dict[str, int]  # task -> the paper's sample count where it differs from the column's
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    file: str  # the file of the repository the numbers are read from ("" where none prints them)
    layout: str
    threats: tuple[str, ...]  # "clean", "2/255", ...: Linf radii in pixel units of [0, 1] images
    sections: dict[str, str]  # threat -> the section of `file` that prints it
    evaluation: str  # how the paper's code produced the numbers
    attack: str  # our --attack for its attacked cells
    protocol: str | None  # our --protocol (None: zero-shot classification)
    precision: str  # what the paper's attack computed in (our name)
    steps: int
    columns: tuple[Column, ...]
    groups: tuple[Group, ...]
    # Further `bench run` settings the paper's code implies, keyed as in a suite file
    # (ΔCLIP's CLIP_benchmark fork: sample_order = "dvd")
    run: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Paper:
    name: str
    title: str
    authors: str
    where: str
    repository: str
    commit: str
    tables: tuple[Table, ...]

    def table(self, table_id: str) -> Table:
        for table in self.tables:
            if table.id == table_id:
                return table
        raise unknown(f"table of {self.name}", table_id, [t.id for t in self.tables])


def paper_file(name: str) -> Path:
    if name not in PAPERS:
        raise unknown("paper", name, PAPERS, " (bench paper --help)")
    return FOLDER / f"{name}.toml"


def load_paper(name: str) -> Paper:
    """The paper's tables, checked: every row has a value for every (threat, column)."""
    path = paper_file(name)
    tomllib = _toml_reader()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BenchError(f"cannot read {path} ({err}); restore it from git") from None
    where = str(path)
    try:
        tables = tuple(_table(t, f"{where} table {k + 1}") for k, t in enumerate(data["tables"]))
        return Paper(str(data["name"]), str(data["title"]), str(data["authors"]), str(data["where"]),
                     str(data["repository"]), str(data["commit"]), tables)
    except (KeyError, TypeError) as err:
        raise BenchError(f"{where} is malformed (missing or wrong field {err}); restore it from git") from None


def _toml_reader() -> Any:
    """Python 3.11's tomllib, or on 3.10 the tomli package it came from."""
    try:
        import tomllib
    except ModuleNotFoundError:
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise BenchError("bench paper reads TOML: use Python 3.11 or later, or pip install tomli") from None
    return tomllib


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (value or ()))


def _table(data: dict[str, Any], where: str) -> Table:
    columns = tuple(Column(str(c["label"]), str(c["metric"]), c.get("task"), _names(c.get("average_of")),
                           c.get("tiny"), _names(c.get("tiny_average_of")), c.get("samples"))
                    for c in data["columns"])
    for column in columns:
        if (column.task is None) == (not column.average_of):
            raise BenchError(f"{where} column {column.label!r} needs a task or an average_of (not both); "
                             "restore it from git")
    threats = tuple(str(t) for t in data["threats"])
    groups = tuple(Group(str(g["label"]), g.get("vlm"), g.get("tiny_vlm"), dict(g.get("samples", {})),
                         tuple(_row(r, columns, threats, f"{where} group {g['label']!r}") for r in g["rows"]))
                   for g in data["groups"])
    return Table(str(data["id"]), str(data["title"]), str(data["file"]), str(data["layout"]), threats,
                 dict(data["sections"]), str(data["evaluation"]), str(data["attack"]), data["protocol"] or None,
                 str(data["precision"]), int(data["steps"]), columns, groups, dict(data.get("run", {})))


def _row(data: dict[str, Any], columns: tuple[Column, ...], threats: tuple[str, ...], where: str) -> Row:
    label = str(data["label"])
    values = {threat: _values(data.get(threat), columns, f"{where} row {label!r} {threat}") for threat in threats}
    return Row(label, data.get("encoder"), data.get("tiny"), str(data.get("note", "")), values)


def _values(given: Any, columns: tuple[Column, ...], where: str) -> tuple[Published, ...]:
    """One value per column from an array (every column) or a table (the columns printed; the others
    are NOT_TRANSCRIBED)."""
    labels = [c.label for c in columns]
    if isinstance(given, dict):
        for label in given:
            if label not in labels:
                raise unknown(f"column in {where}", label, labels)
        given = [given.get(label, NOT_TRANSCRIBED) for label in labels]
    if not isinstance(given, list) or len(given) != len(columns):
        raise BenchError(f"{where}: give one value per column ({', '.join(labels)}); restore it from git")
    for value in given:
        if value != NOT_TRANSCRIBED and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BenchError(f"{where}: {value!r} is neither a number nor {NOT_TRANSCRIBED!r}; restore it from git")
    return tuple(float(v) if v != NOT_TRANSCRIBED else NOT_TRANSCRIBED for v in given)
