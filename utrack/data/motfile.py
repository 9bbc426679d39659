"""Reading and writing MOTChallenge text files (gt.txt, det.txt, results files).

One parser for every comma-separated MOT file: rows may come in any order, blank lines are
skipped, and a malformed line raises ``DataFormatError`` naming the file and the line number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utrack.errors import DataFormatError


def read_mot_txt(path: str | Path, min_columns: int = 6, max_columns: int = 10) -> np.ndarray:
    """Parse a MOTChallenge file into a float64 array (rows, max_columns).

    Lines shorter than ``max_columns`` are padded with -1 (so 7-column detection files and
    9-column ground truth share one layout: frame, id, x, y, w, h, conf, class/x, vis/y, z).
    Frames and ids must be integers, boxes finite; a line with fewer than ``min_columns`` values,
    a value that is not a number, a non-integer frame or a frame < 1 is an error naming
    ``path:line``. An empty file gives an array with 0 rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    rows: list[list[float]] = []
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            parts = [p for p in text.replace(" ", "").split(",")]
            if parts and parts[-1] == "":
                parts = parts[:-1]  # trailing comma
            if len(parts) < min_columns or len(parts) > max_columns:
                raise DataFormatError(
                    f"{path}:{number}: expected {min_columns} to {max_columns} comma-separated "
                    f"values, got {len(parts)}: {text!r}")
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise DataFormatError(f"{path}:{number}: not a number in {text!r}") from None
            if not all(np.isfinite(values[:6])):
                raise DataFormatError(f"{path}:{number}: non-finite frame, id or box in {text!r}")
            if values[0] < 1 or not float(values[0]).is_integer():
                raise DataFormatError(f"{path}:{number}: frame must be an integer >= 1 in {text!r}")
            if not float(values[1]).is_integer():
                raise DataFormatError(f"{path}:{number}: id must be an integer in {text!r}")
            rows.append(values + [-1.0] * (max_columns - len(values)))
    if not rows:
        return np.zeros((0, max_columns), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


def format_results_rows(rows: np.ndarray) -> str:
    """Rows (frame, id, x, y, w, h, score) -> MOTChallenge results text
    ``frame,id,x,y,w,h,score,-1,-1,-1`` sorted by frame then id."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    out = []
    for f, i, x, y, w, h, s in rows[order]:
        out.append(f"{int(f)},{int(i)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1\n")
    return "".join(out)


def write_mot_results(path: str | Path, rows: np.ndarray) -> Path:
    """Write tracking results (see ``format_results_rows``); parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_results_rows(rows))
    return path
