"""tools/eval.py: table, --json layout, exit code 2 on bad input; once as a subprocess."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from utrack.data.motfile import read_mot_txt, write_mot_results
from utrack.eval.mot import evaluate_folder

SUMMARY = {"MOTA": float, "IDF1": float, "HOTA": float, "MT": int, "ML": int, "FP": int,
           "FN": int, "IDS": int, "Frag": int}
SEQS = ("MOT17-02-FRCNN", "MOT17-05-FRCNN")


@pytest.fixture(scope="module")
def eval_tool(repo_root: Path) -> ModuleType:
    path = repo_root / "tools" / "eval.py"
    spec = importlib.util.spec_from_file_location("utrack_tools_eval", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mini(shared_data: Path) -> Path:
    return shared_data / "MOT17-mini"


@pytest.fixture
def results(mini: Path, tmp_path: Path) -> Path:
    out = tmp_path / "results"
    for seq in SEQS:
        det = read_mot_txt(mini / seq / "det" / "det.txt")
        write_mot_results(out / f"{seq}.txt",
                          np.column_stack([det[:, 0], np.arange(1, len(det) + 1), det[:, 2:7]]))
    return out


def _check_summary(metrics: dict) -> None:
    assert set(metrics) == set(SUMMARY)
    for key, kind in SUMMARY.items():
        assert type(metrics[key]) is kind, key


def test_json_output(eval_tool: ModuleType, mini: Path, results: Path, tmp_path: Path,
                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "metrics" / "eval.json"
    code = eval_tool.main(["--gt", str(mini), "--results", str(results), "--json", str(out),
                           "--seqs", *SEQS])
    assert code == 0
    table = capsys.readouterr().out
    assert all(seq in table for seq in SEQS) and "COMBINED" in table
    data = json.loads(out.read_text())
    assert list(data["sequences"]) == list(SEQS)
    for metrics in [*data["sequences"].values(), data["combined"]]:
        _check_summary(metrics)
    expected = evaluate_folder(mini, results, sequences=SEQS)
    for key in SUMMARY:
        assert data["combined"][key] == pytest.approx(expected["combined"][key]), key
        for seq in SEQS:
            assert data["sequences"][seq][key] == pytest.approx(expected["sequences"][seq][key])
    assert data["extra"]["combined"]["num_frames"] == 4 + 6
    assert "MOTA" not in data["extra"]["combined"]


def test_split_option(eval_tool: ModuleType, mini: Path, results: Path, tmp_path: Path) -> None:
    out = tmp_path / "val.json"
    assert eval_tool.main(["--gt", str(mini / SEQS[0]), "--results", str(results),
                           "--split", "val_half", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["extra"]["combined"]["num_frames"] == 1  # frame 4 of 4


def test_malformed_line_exit_2(eval_tool: ModuleType, mini: Path, results: Path,
                               capsys: pytest.CaptureFixture) -> None:
    bad = results / f"{SEQS[0]}.txt"
    lines = bad.read_text().splitlines()
    lines[2] = "3,7,100,abc,20,40,0.9,-1,-1,-1"
    bad.write_text("\n".join(lines) + "\n")
    code = eval_tool.main(["--gt", str(mini), "--results", str(results), "--seqs", *SEQS])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{bad}:3:" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_results_exit_2(eval_tool: ModuleType, mini: Path, results: Path,
                                capsys: pytest.CaptureFixture) -> None:
    code = eval_tool.main(["--gt", str(mini), "--results", str(results),
                           "--seqs", SEQS[0], "MOT17-13-FRCNN"])
    err = capsys.readouterr().err
    assert code == 2
    assert "MOT17-13-FRCNN" in err and err.startswith("error:")
    assert eval_tool.main(["--gt", str(mini / "nowhere"), "--results", str(results)]) == 2


def test_subprocess(repo_root: Path, python: str, mini: Path, results: Path,
                    tmp_path: Path) -> None:
    out = tmp_path / "sub.json"
    done = subprocess.run(
        [python, str(repo_root / "tools" / "eval.py"), "--gt", str(mini / SEQS[1]),
         "--results", str(results), "--json", str(out)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert SEQS[1] in done.stdout
    data = json.loads(out.read_text())
    _check_summary(data["sequences"][SEQS[1]])
    assert data["sequences"][SEQS[1]] == data["combined"]
