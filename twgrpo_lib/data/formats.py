"""Read the benchmark formats A-D of docs/formats.md into one item layout.

Every loader returns plain dicts with the fields of format A plus a few more:

- ``id`` (str), ``video`` (the path re-rooted under ``video_root``, see ``video.resolve_video_path``),
  ``video_original`` (the path as written in the file),
- ``problem``: the question followed by its lettered options, one per line, as the model sees it in training
  (format A's ``problem`` is kept verbatim; B, C and D get ``question + "\\nA. text\\nB. text..."``),
- ``question`` (the bare question), ``options`` (``["A. text", ...]``), ``solution`` (``"<answer>A,C</answer>"``),
- ``question_type`` where the source has one (A ``type``/``question_type``, C ``type``, D ``question_type``),
- ``source_format`` ("A"-"D"), and every other field of the source record under its own name
  (Video-MME's ``duration``/``domain``, NExT-GQA's ``glue``, ...). For C, ``answer`` stays as in the file.

Records that cannot be scored are skipped and counted, never silently: Video-R1 items whose ``problem_type``
is not "multiple choice", CLEVRER descriptive (open-ended) questions and CLEVRER questions without a correct
choice. A question with a single option is still a question and is read as it is (Video-R1's MVBench file
has five). A malformed record raises :class:`DatasetFormatError` naming the file, the record index and the
field; with ``read_items(..., on_error="record")`` it is kept in ``LoadResult.errors`` instead and reading
goes on (``twgrpo evaluate`` turns each into an error record of that question).

Differences from the paper's reference code:

1. The reference's NExT-GQA conversion writes options as "A text" (no period); converted C items here use
   "A. text", the layout of format A and of the CLEVRER files. Format A files are read either way.
2. The reference converts absolute video paths by hand per benchmark; here one rule re-roots them all.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from twgrpo_lib.core.answers import solution_letters
from twgrpo_lib.core.qa_inversion import parse_item
from twgrpo_lib.data.video import resolve_video_path

logger = logging.getLogger(__name__)

FORMATS = ("A", "B", "C", "D")
_B_OPTION = re.compile(r"^([A-Z])\.\s*(.*)$", re.DOTALL)
_FIELD = re.compile(r"field '([^']+)'")
_CLEVRER_VIDEO = re.compile(r"^video_(\d+)\.mp4$")


class DatasetFormatError(ValueError):
    """A record (or the whole file) does not follow its format; names file, record index and field."""

    def __init__(self, path, message: str, index: int | None = None, field: str | None = None,
                 line: int | None = None):
        where = str(path) + (f": line {line}" if line is not None else "") + (
            f": record {index}" if index is not None else "") + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")
        self.path, self.index, self.field, self.line = str(path), index, field, line


@dataclass
class LoadResult:
    """Items of one file plus what was skipped and why."""

    path: str
    format: str
    records: int  # records in the file (for D: questions)
    items: list[dict] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    errors: list[dict] = field(default_factory=list)  # on_error="record": {"index", "id", "error", "record"}

    def summary(self) -> str:
        text = f"{self.path}: format {self.format}, {self.records} records -> {len(self.items)} items"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        if self.errors:
            text += f"; {len(self.errors)} records that cannot be posed (first: {self.errors[0]['error']})"
        return text


def read_text(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped); a missing or non-UTF-8 file names itself."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DatasetFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise DatasetFormatError(path, "is a folder, not a file") from None
    except UnicodeDecodeError as err:
        raise DatasetFormatError(path, f"not UTF-8 text (byte {err.start}: {err.reason})") from None


def _parse(text: str, path: Path, line: int | None = None):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(path, f"not valid JSON ({err.msg}, column {err.colno})",
                                 line=err.lineno if line is None else line) from None
    except RecursionError:
        raise DatasetFormatError(path, "JSON nested too deeply to read", line=line) from None


def read_json(path: str | os.PathLike):
    """The one JSON document in a file (a manifest, a scene list): any defect (missing file, not UTF-8,
    malformed or deeply nested JSON) raises :class:`DatasetFormatError` naming the file."""
    path = Path(path)
    return _parse(read_text(path), path)


def read_records(path: str | os.PathLike, *, with_lines: bool = False):
    """The records of a JSON file: a list, one object per line (JSON Lines) or ``{"results": [...]}`` (the
    layout of some published evaluation logs). The one reader of JSON data files in the kit.

    Blank lines are skipped. Any defect (missing file, not UTF-8, malformed or deeply nested JSON, another
    layout, no record at all) raises :class:`DatasetFormatError` naming the file and, for JSON Lines, the
    line. With ``with_lines`` returns ``(records, line numbers)``; the numbers are [] unless the file is
    JSON Lines.
    """
    path = Path(path)
    text = read_text(path)
    stripped = text.lstrip()
    records, lines = None, []
    if stripped.startswith("["):
        records = _parse(text, path)
    elif stripped.startswith("{"):
        try:
            whole = json.loads(text)  # one object, possibly pretty-printed over several lines
        except (json.JSONDecodeError, RecursionError):
            whole = None  # not one object: JSON Lines, parsed (and reported) line by line below
        if isinstance(whole, dict) and isinstance(whole.get("results"), list):
            records = whole["results"]
        elif isinstance(whole, dict) and path.suffix not in (".jsonl", ".ndjson"):
            raise DatasetFormatError(path, "a single JSON object without a 'results' list; expected a JSON "
                                           "list or one record per line")
    elif stripped:
        raise DatasetFormatError(path, f"not JSON: starts with {stripped[:20]!r}", line=1)
    if records is None:
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                records.append(_parse(line, path, line=number))
                lines.append(number)
    if not isinstance(records, list):
        raise DatasetFormatError(path, f"expected a JSON list of records, got {type(records).__name__}")
    if not records:
        raise DatasetFormatError(path, "holds no records (an empty file or an empty list)")
    return (records, lines) if with_lines else records


def detect_format(record: dict) -> str | None:
    """Which of the formats A-D a record looks like (None when none fits).

    >>> detect_format({"problem": "Q\\nA. x\\nB. y", "solution": "<answer>A</answer>", "video": "v.mp4"})
    'A'
    >>> detect_format({"problem": "Q", "problem_type": "multiple choice", "options": [], "solution": ""})
    'B'
    >>> detect_format({"question": "why", "options": [], "answer": "(A)"})
    'C'
    >>> detect_format({"scene_index": 0, "video_filename": "video_00000.mp4", "questions": []})
    'D'
    """
    if not isinstance(record, dict):
        return None
    if "questions" in record and ("video_filename" in record or "scene_index" in record):
        return "D"
    if "problem" in record and "solution" in record:
        return "B" if ("problem_type" in record or "data_type" in record) else "A"
    if {"question", "options", "answer"} <= set(record):
        return "C"
    return None


def lettered(texts: list[str]) -> list[str]:
    """Option texts labelled the way format A and the prompts expect.

    >>> lettered(["to leave", "to eat"])
    ['A. to leave', 'B. to eat']
    """
    return [f"{chr(ord('A') + i)}. {text}" for i, text in enumerate(texts)]


def make_problem(question: str, options: list[str]) -> str:
    """Format A's ``problem``: the question, then one lettered option per line.

    >>> make_problem("Why?", ["A. x", "B. y"])
    'Why?\\nA. x\\nB. y'
    """
    return question + "\n" + "\n".join(options)


def _solution(letters) -> str:
    return "<answer>" + ",".join(letters) + "</answer>"


def _video(record: dict, path: Path, index: int, video_root) -> tuple[str, str]:
    video = record.get("video", record.get("path"))  # Video-R1's training file names it `path`
    if not isinstance(video, str) or not video:
        raise DatasetFormatError(path, f"missing or empty video path ({video!r})", index, "video")
    return resolve_video_path(video, video_root), video


def _from_a_or_c(record: dict, path: Path, index: int, video_root, fmt: str) -> dict:
    keys = ("problem", "solution") if fmt == "A" else ("question", "options", "answer")
    for name in keys:
        if name not in record:
            raise DatasetFormatError(path, f"missing (format {fmt} needs {', '.join(keys)})", index, name)
    try:  # only the format's own fields, so a format A file carrying C-style extras is read as A
        mc = parse_item({k: record[k] for k in keys if k in record}, index, str(path))
    except ValueError as err:
        m = _FIELD.search(str(err))
        raise DatasetFormatError(path, str(err).split(f"record {index}: ", 1)[-1], index,
                                 m.group(1) if m else None) from None
    options = lettered(mc.options)
    problem = record["problem"] if fmt == "A" else make_problem(mc.question, options)
    if not isinstance(problem, str) or not problem.strip():
        raise DatasetFormatError(path, "empty problem", index, "problem")
    video, original = _video(record, path, index, video_root)
    item = {k: v for k, v in record.items()}
    item.update(id=str(record.get("id", record.get("problem_id", f"{path.stem}-{index}"))), video=video,
                video_original=original, problem=problem, question=mc.question, options=options,
                solution=_solution(options[i][0] for i in mc.answers), source_format=fmt)
    question_type = record.get("question_type", record.get("type"))
    if question_type is not None:
        item["question_type"] = question_type
    return item


def _from_b(record: dict, path: Path, index: int, video_root) -> dict:
    for name in ("problem", "options", "solution"):
        if name not in record:
            raise DatasetFormatError(path, "missing", index, name)
    if not isinstance(record["problem"], str) or not record["problem"].strip():
        raise DatasetFormatError(path, f"expected the question text, got {record['problem']!r}", index, "problem")
    options = record["options"]
    if not isinstance(options, list) or not options:
        raise DatasetFormatError(path, f"expected a non-empty list of options, got {options!r}", index, "options")
    for i, option in enumerate(options):
        m = _B_OPTION.match(option) if isinstance(option, str) else None
        if not m or m.group(1) != chr(ord("A") + i):
            raise DatasetFormatError(path, f"entry {i} should look like '{chr(ord('A') + i)}. text', got {option!r}",
                                     index, "options")
    letters = solution_letters(record["solution"])
    valid = [chr(ord("A") + i) for i in range(len(options))]
    if not letters or any(c not in valid for c in letters):
        raise DatasetFormatError(path, f"{record['solution']!r} is not '<answer>X</answer>' with option letters "
                                       f"among {valid[0]}-{valid[-1]}", index, "solution")
    video, original = _video(record, path, index, video_root)
    item = {k: v for k, v in record.items()}
    item.update(id=str(record.get("problem_id", record.get("id", f"{path.stem}-{index}"))), video=video,
                video_original=original, problem=make_problem(record["problem"], list(options)),
                question=record["problem"], options=list(options), solution=_solution(letters), source_format="B")
    return item


def _clevrer_video(filename: str, video_root) -> str:
    """CLEVRER's zips unpack to folders of 1,000 videos (video_10000-11000/video_10003.mp4); try both layouts."""
    m = _CLEVRER_VIDEO.match(filename)
    if video_root is None or m is None or os.path.exists(os.path.join(video_root, filename)):
        return resolve_video_path(filename, video_root)
    low = int(m.group(1)) // 1000 * 1000
    nested = f"video_{low:05d}-{low + 1000:05d}/{filename}"
    return resolve_video_path(nested if os.path.exists(os.path.join(video_root, nested)) else filename, video_root)


def _from_d(entry: dict, path: Path, index: int, video_root, result: LoadResult) -> None:
    filename = entry.get("video_filename")
    if not isinstance(filename, str) or not isinstance(entry.get("questions"), list):
        raise DatasetFormatError(path, "a CLEVRER entry needs 'video_filename' (str) and 'questions' (list)",
                                 index, "video_filename" if not isinstance(filename, str) else "questions")
    video = _clevrer_video(filename, video_root)
    for q_index, question in enumerate(entry["questions"]):
        where = f"questions[{q_index}]"
        result.records += 1
        if "choices" not in question:
            result.skipped["descriptive (open-ended) questions"] += 1
            continue
        choices = question["choices"]
        if not isinstance(choices, list) or len(choices) < 2 or not isinstance(question.get("question"), str):
            raise DatasetFormatError(path, "needs 'question' (str) and 'choices' (list of at least 2)", index, where)
        correct = []
        for c_index, choice in enumerate(choices):
            answer = choice.get("answer") if isinstance(choice, dict) else None
            if answer not in ("correct", "wrong") or not isinstance(choice.get("choice"), str):
                raise DatasetFormatError(path, f"choice {c_index} needs 'choice' text and 'answer' "
                                               f"'correct' or 'wrong' (the test split has no answers)", index, where)
            if answer == "correct":
                correct.append(chr(ord("A") + c_index))
        if not correct:
            result.skipped["multiple-choice questions without a correct choice"] += 1
            continue
        options = lettered([choice["choice"] for choice in choices])
        item = {k: v for k, v in question.items() if k not in ("choices", "question_id")}
        item.update(id=f"{entry.get('scene_index', index)}-{question.get('question_id', q_index)}", video=video,
                    video_original=filename, problem=make_problem(question["question"], options),
                    question=question["question"], options=options, solution=_solution(correct),
                    question_type=question.get("question_type"), source_format="D",
                    scene_index=entry.get("scene_index"))
        result.items.append(item)


def record_id(record, path: Path, index: int, fmt: str) -> str:
    """The id a record's item gets (format B: ``problem_id`` first; A and C: ``id`` first; else file-index).

    >>> record_id({"problem_id": 7, "id": "x"}, Path("mvbench.json"), 3, "B"), record_id({}, Path("a.json"), 3, "A")
    ('7', 'a-3')
    """
    names = ("problem_id", "id") if fmt == "B" else ("id", "problem_id")
    found = [record[n] for n in names if isinstance(record, dict) and record.get(n) is not None]
    return str(found[0]) if found else f"{path.stem}-{index}"


def read_items(path: str | os.PathLike, *, video_root: str | os.PathLike | None = None,
               format: str | None = None, on_error: str = "raise") -> LoadResult:
    """Like :func:`load_items`, returning the skipped counts too. ``on_error="record"`` keeps a malformed
    record in ``errors`` (its index, id, one-line error and the record) and reads on, instead of raising."""
    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    path = Path(path)
    records = read_records(path)
    fmt = format.upper() if format else (detect_format(records[0]) if records else "A")
    if fmt not in FORMATS:
        raise DatasetFormatError(path, f"cannot tell the format from record 0 (fields: "
                                       f"{sorted(records[0]) if isinstance(records[0], dict) else records[0]!r}); "
                                       f"pass format= one of {FORMATS}" if format is None else
                                 f"unknown format {format!r}; one of {FORMATS}")
    root = None if video_root is None else os.fspath(video_root)
    result = LoadResult(str(path), fmt, 0 if fmt == "D" else len(records))
    for index, record in enumerate(records):
        try:
            _read_record(record, path, index, root, fmt, result)
        except DatasetFormatError as err:
            if on_error == "raise":
                raise
            result.errors.append({"index": index, "id": record_id(record, path, index, fmt), "error": str(err),
                                  "record": record})
    ids = Counter(item["id"] for item in result.items)
    duplicates = [i for i, n in ids.items() if n > 1]
    if duplicates:
        raise DatasetFormatError(path, f"{len(duplicates)} ids occur more than once (e.g. {duplicates[:3]})",
                                 field="id")
    return result


def _read_record(record, path: Path, index: int, root, fmt: str, result: LoadResult) -> None:
    if not isinstance(record, dict):
        raise DatasetFormatError(path, f"expected a JSON object, got {type(record).__name__}", index)
    if fmt == "D":
        _from_d(record, path, index, root, result)
    elif fmt == "B":
        kind = record.get("problem_type", "multiple choice")
        if kind != "multiple choice":
            result.skipped[f"problem_type {kind!r} (not multiple choice)"] += 1
            return
        result.items.append(_from_b(record, path, index, root))
    else:
        result.items.append(_from_a_or_c(record, path, index, root, fmt))


def load_items(path: str | os.PathLike, *, video_root: str | os.PathLike | None = None,
               format: str | None = None) -> list[dict]:
    """Normalised items of a format A, B, C or D file (JSON list, or JSON Lines for ``.jsonl``).

    The format is detected from the first record unless ``format`` is given; skipped records are logged.
    Videos are not opened: check them with ``video.verify_videos(items)``.
    """
    result = read_items(path, video_root=video_root, format=format)
    if result.skipped:
        logger.info(result.summary())
    return result.items
