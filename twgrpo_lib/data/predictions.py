"""Predictions files (docs/formats.md §E) as a resume store that survives ``kill -9``.

One JSON object per line, appended and made durable (flush + fsync) before the next question starts, so a
killed run loses at most the line it was writing. Reading cuts such a torn last line off (with a warning)
and the question is simply run again; a damaged line anywhere else is an error, never skipped. Dropping
records (error records of questions asked again) rewrites the file to a temporary one and renames it over
the old one, so a kill leaves either file, never a mixture.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path


def read_records(path: Path, repair: bool = True) -> list[dict]:
    """Records of a predictions file; a truncated last line (a killed writer) is dropped.

    With ``repair`` the file itself is cut back to its last complete line so appending can go on.
    An unreadable line anywhere else is an error naming the file and line.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "p.jsonl"
    >>> _ = p.write_text('{"id": 1}\\n{"id": 2}\\n{"id": 3, "mod')
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     ids = [r["id"] for r in read_records(p)]
    >>> ids, p.read_text(), "truncated last line" in str(caught[0].message)
    ([1, 2], '{"id": 1}\\n{"id": 2}\\n', True)
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    records, good_end, offset = [], 0, 0
    for number, raw in enumerate(lines, start=1):
        end = offset + len(raw) + (1 if number < len(lines) else 0)
        if raw.strip(b"\x00 \t\r"):
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except RecursionError:
                raise ValueError(f"{path}: line {number}: JSON nested too deeply to read") from None
            except ValueError as err:
                if any(rest.strip(b"\x00 \t\r") for rest in lines[number:]):
                    raise ValueError(f"{path}: line {number} is not a JSON record ({err})") from None
                warnings.warn(f"{path}: dropped a truncated last line ({len(raw)} bytes), left by a killed writer",
                              stacklevel=2)
                break
            records.append(record)
            good_end = end
        offset = end
    missing_newline = good_end > 0 and data[good_end - 1:good_end] != b"\n"
    if repair and (good_end != len(data) or missing_newline):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            if missing_newline:  # a complete record whose newline was not written
                fh.seek(good_end)
                fh.write(b"\n")
            fh.flush()
            os.fsync(fh.fileno())
    return records


def append_record(fh, record: dict) -> None:
    """Append one record as a JSON line and make it durable (flush + fsync) before returning."""
    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def rewrite_records(path: Path, records: list[dict]) -> None:
    """Replace the file's records by ``records`` atomically (temporary file, fsync, rename).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "p.jsonl"
    >>> rewrite_records(p, [{"id": 1}]); p.read_text()
    '{"id": 1}\\n'
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def question_key(item_or_record: dict) -> str:
    """The key a question is resumed by: its ``id`` as a string.

    >>> question_key({"id": 7}) == question_key({"id": "7"})
    True
    """
    return str(item_or_record["id"])
