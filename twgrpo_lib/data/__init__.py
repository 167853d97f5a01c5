"""Data: benchmark file formats, training inputs, video decoding, the predictions store, mini-CLEVRER.

Imports only ``twgrpo_lib.core``. Files shipped with the kit (samples of NExT-GQA and MMVU, an example
predictions file) lie in ``samples/``: ``sample_path(name)``.
"""

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "samples"


def sample_path(name: str) -> Path:
    """A data file shipped in ``twgrpo_lib/data/samples/``; a missing one is an error naming it.

    >>> sample_path("nextgqa_val_sample.json").name
    'nextgqa_val_sample.json'
    """
    path = SAMPLES / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not among the kit's samples ({sorted(p.name for p in SAMPLES.iterdir())})")
    return path
