"""tools/make_synthetic.py: more sequences of the recipe, identical to the training run's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from utrack.cli import default_config_files
from utrack.config import load_config
from utrack.data.synthetic import generate_dataset


def test_writes_the_sequences_the_training_run_would_generate(tool, tmp_path: Path) -> None:
    result = tool("tools/make_synthetic.py", "--out", str(tmp_path / "test"), "--first", "3",
                  "--count", "1", "--set", "data.synthetic.frames=4")
    assert result.returncode == 0, result.stderr
    assert "SYN-03..SYN-03" in result.stdout
    recipe = load_config(default_config_files("fairmot", synthetic=True),
                         ["data.synthetic.frames=4"]).data.synthetic
    _, val = generate_dataset(tmp_path / "run", dataclasses.replace(recipe, num_train=2, num_val=1))
    made = tmp_path / "test" / "SYN-03"
    assert val[0].name == "SYN-03"
    for name in ("gt/gt.txt", "det/det.txt", "seqinfo.ini", "img1/000004.jpg"):
        assert (made / name).read_bytes() == (val[0] / name).read_bytes(), name
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == ["SYN-03", "config.yaml"]


def test_rejects_an_empty_range(tool, tmp_path: Path) -> None:
    result = tool("tools/make_synthetic.py", "--out", str(tmp_path), "--count", "0")
    assert result.returncode == 2
    assert "--count" in result.stderr


def test_starts_after_the_training_and_held_out_sequences(tool, tmp_path: Path) -> None:
    result = tool("tools/make_synthetic.py", "--out", str(tmp_path), "--count", "1",
                  "--set", "data.synthetic.frames=2", "data.synthetic.num_val=1")
    assert result.returncode == 0, result.stderr
    assert "SYN-10..SYN-10" in result.stdout  # 8 training + 1 held out
