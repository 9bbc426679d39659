"""DistributedDataParallel on CPU: two processes (gloo) train one model; rank 0 alone writes."""

from __future__ import annotations

import re

import pytest
import torch

TINY = ["model.backbone=resnet18", "model.head_conv=16", "data.input_size=[128, 96]",
        "data.num_workers=0", "train.batch_size=4", "data.synthetic.frames=12",
        "data.synthetic.num_train=2", "data.synthetic.width=256", "data.synthetic.height=160"]


@pytest.mark.slow
def test_torchrun_two_processes(tool, tmp_path):
    out = tmp_path / "ddp"
    res = tool("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               "tools/train.py", "--out", str(out), "--epochs", "2", "--no-eval", "--set", *TINY,
               f"data.synthetic.root={tmp_path / 'data'}", env={"OMP_NUM_THREADS": "1"})
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]
    assert "2 process(es)" in log
    counts = [list(map(int, re.findall(r"\d+", m))) for m in
              re.findall(r"samples per rank \[([\d, ]+)\]", log)]
    assert len(counts) == 2  # one line per epoch
    for per_rank in counts:  # both ranks trained on (disjoint halves of) the 24 frames
        assert len(per_rank) == 2 and all(c >= 12 for c in per_rank)
    writes = re.findall(r"rank (\d+) wrote", log)
    assert writes == ["0", "0"]  # one checkpoint per epoch, by rank 0 only
    ckpt = torch.load(out / "checkpoint_last.pth", weights_only=False)
    assert ckpt["epoch"] == 2
