"""Output folders that belong to one run: what the run is, one writer at a time, ``--force`` and ``--resume``.

Every command that writes a folder (``train``, ``sft``, ``pretrain``, ``make-data``, ``build-tiny``,
``evaluate``, ``ablate``) claims it with :func:`claim` before it writes anything:

- ``OUT/run.json`` records the command and the run's *identity*: whatever makes its output what it is (the
  model, the content of the data file, the settings), never where files are or how fast they are made;
- a new or empty folder becomes this run's;
- a folder whose ``run.json`` names the same run is continued: ``evaluate`` and ``ablate`` pick up where they
  stopped, ``make-data`` and the supervised commands write the same output again, and ``train`` continues only
  when asked (``resume=True``, ``--resume``) because a half-finished training run is worth a decision;
- a folder holding another run, or files without a ``run.json``, is refused with what differs, unless
  ``force``: the old folder is then moved aside to ``OUT.old-<UTC time>`` (never deleted) and a new one begins;
- one writer at a time: an exclusive lock on ``OUT/.lock`` is held until the command ends, and a second
  writer is refused. The kernel releases the lock when its holder dies, ``kill -9`` included, so a crash
  never leaves a stale lock behind.

Identities are compared as JSON (tuples and lists are the same), field by field, so the refusal names each
setting that changed (``model.path: '/a' then, '/b' now``).

A command that writes one file (``twgrpo invert``) uses :func:`write_output_file`: never over one of its
inputs; over an existing file only when the content is the same, or with ``force``, which moves the old file
aside to ``NAME.old-<UTC time>.EXT``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class RunFolderError(ValueError):
    """An output folder cannot be used for this run; the message says why and what to do."""


@dataclass
class Claim:
    """A claimed folder: ``state`` is ``"new"`` (empty, or made so by ``force``) or ``"same"`` (holds this run);
    ``moved_to`` is where ``force`` moved an earlier run."""

    path: Path
    state: str
    moved_to: Path | None = None


# --- identities ------------------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model: str | os.PathLike) -> dict:
    """A model as part of a run's identity: its absolute path and, for a local folder, a fingerprint of its
    weight files (name, size, modification time), so a model trained again into the same folder is another
    model. Weights are not hashed: a 7B checkpoint would take a minute. A hub id is kept as it is."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return {"path": os.fspath(model), "weights": None}
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return {"path": str(path.resolve()), "weights": digest.hexdigest()}


def as_json(value):
    """``value`` as it reads back from JSON (tuples become lists, paths strings), so identities compare alike.

    >>> as_json({"seeds": (0, 1), "out": Path("x")})
    {'out': 'x', 'seeds': [0, 1]}
    """
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def differences(saved, current, prefix: str = "") -> list[str]:
    """What differs between two identities, one ``name: old then, new now`` per leaf.

    >>> differences({"model": {"path": "a"}, "seed": 1}, {"model": {"path": "b"}, "seed": 1})
    ["model.path: 'a' then, 'b' now"]
    """
    if isinstance(saved, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(saved) | set(current)):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in saved:
                found.append(f"{name}: not set then, {current[key]!r} now")
            elif key not in current:
                found.append(f"{name}: {saved[key]!r} then, not set now")
            else:
                found += differences(saved[key], current[key], name)
        return found
    return [] if saved == current else [f"{prefix or 'value'}: {saved!r} then, {current!r} now"]


# --- the claim -------------------------------------------------------------------------------------------
def read_run(out: str | os.PathLike) -> dict | None:
    """The ``run.json`` of a folder (None when there is none); a damaged one is an error naming it."""
    path = Path(out) / RUN_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunFolderError(f"{path}: not a readable run record ({err}); move the folder aside or use --force") \
            from None
    if not isinstance(record, dict) or "identity" not in record:
        raise RunFolderError(f"{path}: not a run record (no 'identity'); move the folder aside or use --force")
    return record


def holds_files(out: Path) -> bool:
    """Whether a folder exists and holds anything but a lock file."""
    return out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir())


def aside_name(out: Path) -> Path:
    """A free ``OUT.old-<UTC time>`` name beside ``out`` (a file keeps its extension last)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    stem, suffix = (out.stem, out.suffix) if out.is_file() else (out.name, "")
    candidate, n = out.with_name(f"{stem}.old-{stamp}{suffix}"), 1
    while candidate.exists():
        n += 1
        candidate = out.with_name(f"{stem}.old-{stamp}-{n}{suffix}")
    return candidate


def decide(out: Path, command: str, identity: dict, *, force: bool = False, resume: bool | None = None) -> str:
    """What :func:`claim` will do with ``out``, without doing it: ``"new"``, ``"same"`` or ``"aside"`` (move the
    old run aside first); raises :class:`RunFolderError` when the folder cannot be used.

    ``resume``: None, the same run is continued; True, the folder must hold this run (``--resume``); False,
    it must not hold it yet (a command that continues only when asked).
    """
    if force and resume:
        raise RunFolderError(f"{out}: --force starts the run over and --resume continues it; choose one")
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    if not holds_files(out):
        if resume:
            raise RunFolderError(f"{out}: nothing to resume (no run there); leave out --resume to start one")
        return "new"
    if force:
        return "aside"
    saved = read_run(out)
    hint = f"use another --out, or --force to move it aside to {aside_name(out).name} and start over"
    if saved is None:
        raise RunFolderError(f"{out}: holds files but no {RUN_FILE} (not a run of this kit, or one from before "
                             f"run records); {hint}")
    if saved.get("command") != command:
        raise RunFolderError(f"{out}: holds a '{saved.get('command')}' run, not a '{command}' one; {hint}")
    changed = differences(saved["identity"], as_json(identity))
    if changed:
        raise RunFolderError(f"{out}: holds another run ({'; '.join(changed)}); {hint}")
    if resume is False:
        raise RunFolderError(f"{out}: holds this run already; --resume continues it, --force moves it aside to "
                             f"{aside_name(out).name} and starts over")
    return "same"


def _lock(out: Path):
    """An open file holding the exclusive lock of ``out``; a second writer is refused."""
    fh = open(out / LOCK_FILE, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise RunFolderError(f"{out}: in use by another process (it holds {out / LOCK_FILE}); wait for it to "
                             "finish or use another --out") from None
    return fh


@contextlib.contextmanager
def claim(out: str | os.PathLike, command: str, identity: dict, *, force: bool = False,
          resume: bool | None = None) -> Iterator[Claim]:
    """Claim ``out`` for one run of ``command`` (see the module docstring) and hold its lock until the block ends.

    >>> import tempfile; out = Path(tempfile.mkdtemp()) / "run"
    >>> with claim(out, "demo", {"seed": 1}) as c: c.state
    'new'
    >>> with claim(out, "demo", {"seed": 1}) as c: c.state
    'same'
    >>> with claim(out, "demo", {"seed": 2}): pass  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    twgrpo_lib.data.run_folder.RunFolderError: ...holds another run (seed: 1 then, 2 now); use another --out, ...
    """
    out = Path(out)
    decide(out, command, identity, force=force, resume=resume)  # refuse before creating anything
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    try:
        action = decide(out, command, identity, force=force, resume=resume)  # again, now as the only writer
        moved_to = None
        if action == "aside":
            moved_to = aside_name(out)
            out.rename(moved_to)  # nothing is deleted; the old lock moves with it
            out.mkdir()
            old, lock = lock, _lock(out)
            old.close()
            action = "new"
        if action == "new":
            tmp = out / (RUN_FILE + ".tmp")
            tmp.write_text(json.dumps({"command": command, "identity": as_json(identity)}, indent=1,
                                      sort_keys=True) + "\n")
            os.replace(tmp, out / RUN_FILE)
        yield Claim(out, action, moved_to)
    finally:
        lock.close()  # closing the file releases the lock


# --- one output file -------------------------------------------------------------------------------------
def write_output_file(path: str | os.PathLike, text: str, *, inputs=(), force: bool = False) -> Path | None:
    """Write ``text`` to ``path`` (atomically: a temporary file renamed over it) unless that would destroy
    something: ``path`` is one of ``inputs`` (always refused), or an existing file with other content (refused
    unless ``force``, which moves it aside). Returns where an old file was moved, else None.

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> source = folder / "in.json"; _ = source.write_text("[]")
    >>> write_output_file(source, "[1]", inputs=[source])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    twgrpo_lib.data.run_folder.RunFolderError: ...in.json: is also the input; write the output to another file
    """
    path = Path(path)
    if any(path.resolve() == Path(p).resolve() for p in inputs):
        raise RunFolderError(f"{path}: is also the input; write the output to another file")
    if path.exists() and not path.is_file():
        raise RunFolderError(f"{path}: exists and is not a file")
    moved_to = None
    if path.exists() and path.read_bytes() != text.encode("utf-8"):
        if not force:
            raise RunFolderError(f"{path}: exists with other content; write to another file, or --force to move "
                                 f"it aside to {aside_name(path).name}")
        moved_to = aside_name(path)
        path.rename(moved_to)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return moved_to
