"""Tracker-only replay on real annotations: no network, no images, seqinfo.ini is enough."""

from __future__ import annotations

import numpy as np
import pytest

from utrack.data.mot import MOTSequence
from utrack.data.motfile import read_mot_txt
from utrack.occlusion import oracle_occlusion_centers

SEQ = "MOT17-09-FRCNN"


def replay(tool, seq_dir, out, *extra):
    res = tool("tools/track.py", "--dets", str(seq_dir / "det" / "det.txt"), "--input",
               str(seq_dir), "--out", str(out), "--reid", "none", "--quiet", *extra)
    assert res.returncode == 0, res.stderr[-3000:]
    return read_mot_txt(out / f"{SEQ}.txt"), res.stdout


@pytest.mark.slow
def test_replay_with_oracle_and_file_centres(tool, shared_data, tmp_path):
    seq_dir = shared_data / "mot-annotations" / SEQ
    assert not (seq_dir / "img1").exists()  # annotations only
    plain, _ = replay(tool, seq_dir, tmp_path / "none", "--occ-source", "none")
    oracle, log = replay(tool, seq_dir, tmp_path / "oracle", "--occ-source", "oracle")
    refound = tmp_path / "oracle" / "refound" / f"{SEQ}.txt"
    assert refound.is_file() and "refound boxes" in log
    refound_rows = read_mot_txt(refound)
    assert len(refound_rows) > 0
    # refinding only adds boxes: every refound row is in the results, which keep 10 columns
    assert len(oracle) >= len(refound_rows) and oracle.shape[1] == 10
    assert not (tmp_path / "none" / "refound").exists()
    assert len(oracle) > len(plain)

    # the same centres from a file give the same tracks
    seq = MOTSequence(seq_dir)
    lines = []
    for frame in seq.frames():
        for x, y in np.asarray(oracle_occlusion_centers(seq.annotations(frame)[0].astype(float))):
            lines.append(f"{frame},{x:.6f},{y:.6f},1.0\n")
    centres = tmp_path / "centres.txt"
    centres.write_text("".join(lines))
    from_file, _ = replay(tool, seq_dir, tmp_path / "file", "--occ-source", str(centres))
    np.testing.assert_allclose(from_file[:, :6], oracle[:, :6], atol=0.011)


def test_replay_rejects_a_malformed_centre_file(tool, shared_data, tmp_path):
    seq_dir = shared_data / "mot-annotations" / SEQ
    bad = tmp_path / "bad.txt"
    bad.write_text("1,10,20\n2,x,5\n")
    res = tool("tools/track.py", "--dets", str(seq_dir / "det" / "det.txt"), "--input", str(seq_dir),
               "--out", str(tmp_path / "o"), "--reid", "none", "--occ-source", str(bad), "--quiet")
    assert res.returncode == 2 and "bad.txt:2" in res.stderr
