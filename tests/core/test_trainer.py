"""The training loop: exact resume, atomic checkpoints with everything in them, bad input."""

from __future__ import annotations

from pathlib import Path

import torch
import pytest

from baselines import build_baseline
from utrack.data.collate import collate_frames
from utrack.data.datasets import MOTTrainDataset
from utrack.data.mot import IdentityIndex, MOTSequence
from utrack.engine.runtime import Runtime, cpu_runs_bf16_natively, seed_everything, setup_runtime
from utrack.engine.trainer import CHECKPOINT_FORMAT, Trainer, TrainStep
from utrack.errors import CheckpointError


def make_trainer(cfg, sequences, out_dir, runtime: Runtime | None = None) -> Trainer:
    seed_everything(cfg.train.seed)
    seqs = [MOTSequence(d) for d in sequences]
    ids = IdentityIndex(seqs)
    baseline = build_baseline(cfg, [])
    model = baseline.build_model()
    step = TrainStep(model, baseline.build_criterion(ids.num_ids), baseline.forward_train)
    dataset = MOTTrainDataset(seqs, cfg.data, identity_index=ids, seed=cfg.train.seed)
    runtime = runtime or Runtime(torch.device("cpu"))
    return Trainer(step, dataset, collate_frames, cfg, runtime, out_dir)


def state_of(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    out.update({f"loss.{k}": v for k, v in trainer.criterion.state_dict().items()})
    return out


def test_resume_reproduces_an_uninterrupted_run_exactly(tiny_cfg, tiny_sequences, tmp_path):
    tiny_cfg.train.epochs = 2
    tiny_cfg.train.lr_step = [1]  # the scheduler state must survive the resume too
    straight = make_trainer(tiny_cfg, tiny_sequences, tmp_path / "straight")
    straight.fit()

    tiny_cfg.train.epochs = 1
    first = make_trainer(tiny_cfg, tiny_sequences, tmp_path / "interrupted")
    first.fit()
    ckpt = tmp_path / "interrupted" / "checkpoint_last.pth"
    tiny_cfg.train.epochs = 2
    torch.manual_seed(999)  # a different global RNG state: resume must restore the saved one
    resumed = make_trainer(tiny_cfg, tiny_sequences, tmp_path / "interrupted")
    resumed.resume(ckpt)
    assert resumed.state.epoch == 1
    resumed.fit()

    a, b = state_of(straight), state_of(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(tiny_cfg.train.lr * 0.1)
    # the loss-owned parameters (classifier, uncertainty weights) moved and were restored
    assert "reid.classifier.weight" in straight.criterion.state_dict()
    assert float(straight.criterion.uncertainty.s_det.detach()) != tiny_cfg.loss.s_det


def test_checkpoint_holds_everything(tiny_cfg, tiny_sequences, tmp_path):
    trainer = make_trainer(tiny_cfg, tiny_sequences, tmp_path)
    trainer.fit()
    ckpt = torch.load(tmp_path / "checkpoint_last.pth", weights_only=False)
    assert ckpt["format"] == CHECKPOINT_FORMAT
    for key in ("model", "loss", "optimizer", "scheduler", "scaler", "epoch", "config", "rng"):
        assert key in ckpt, key
    assert ckpt["epoch"] == 1 and ckpt["config"]["train"]["epochs"] == 1
    assert any(k.startswith("reid.classifier") for k in ckpt["loss"])
    assert (tmp_path / "config.yaml").is_file()
    assert list(tmp_path.glob("*.tmp*")) == []
    assert any((tmp_path / "tensorboard").iterdir())


def test_resume_rejects_corrupt_or_foreign_checkpoints(tiny_cfg, tiny_sequences, tmp_path):
    trainer = make_trainer(tiny_cfg, tiny_sequences, tmp_path / "run")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02 definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pth"):
        trainer.resume(corrupt)
    foreign = tmp_path / "published.pth"
    torch.save({"epoch": 30, "state_dict": trainer.model.state_dict()}, foreign)
    with pytest.raises(CheckpointError, match="not a utrack training checkpoint"):
        trainer.resume(foreign)


@pytest.mark.parametrize("mode,batch,items", [("single", 4, 4), ("pair", 4, 2), ("pair", 5, 2),
                                              ("pair", 1, 1)])
def test_batch_size_counts_images(tiny_cfg, tiny_sequences, tmp_path, mode, batch, items):
    """train.batch_size is images per step: a pair is two, so pair runs and single-frame runs
    make the same steps over the same images (with data.pair_epoch_fraction 0.5)."""
    from utrack.data.collate import collate_pairs

    tiny_cfg.train.batch_size = batch
    seqs = [MOTSequence(d) for d in tiny_sequences]
    baseline = build_baseline(tiny_cfg, [])
    step = TrainStep(baseline.build_model(), baseline.build_criterion(IdentityIndex(seqs).num_ids),
                     baseline.forward_train)
    dataset = MOTTrainDataset(seqs, tiny_cfg.data, mode=mode)
    collate = collate_pairs if mode == "pair" else collate_frames
    trainer = Trainer(step, dataset, collate, tiny_cfg, Runtime(torch.device("cpu")), tmp_path)
    first = next(iter(trainer.loader))
    assert trainer.loader.batch_size == items
    assert first["image"].shape[0] == items * (2 if mode == "pair" else 1)


@pytest.mark.parametrize("cpu_bf16", [False, True])
def test_cpu_bf16_runs_the_network_in_bfloat16(tiny_cfg, tiny_sequences, tmp_path, cpu_bf16):
    runtime = setup_runtime("cpu", amp=True, cpu_bf16=cpu_bf16)
    assert not runtime.amp  # float16 AMP is CUDA-only
    trainer = make_trainer(tiny_cfg, tiny_sequences, tmp_path, runtime)
    seen: set[torch.dtype] = set()
    trainer.model.hm.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    state = trainer.fit()
    assert seen == {torch.bfloat16 if cpu_bf16 else torch.float32}
    # the weights stay float32 and learn; the losses (float32 inside) stay finite
    after = trainer.model.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    assert not torch.equal(after["hm.2.weight"], before["hm.2.weight"])
    assert torch.isfinite(torch.tensor(state.history[-1]["total"]))


@pytest.mark.parametrize("native", [False, True])
def test_cpu_bf16_auto_follows_the_cpu(monkeypatch, native):
    monkeypatch.setattr("utrack.engine.runtime.cpu_runs_bf16_natively", lambda: native)
    runtime = setup_runtime("cpu", amp=True, cpu_bf16="auto")
    assert runtime.cpu_bf16 is native
    assert runtime.precision == ("bfloat16 autocast" if native else "float32")


def test_native_bf16_probe_agrees_with_proc_cpuinfo():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo (not Linux)")
    flags = set(cpuinfo.read_text().split())
    assert cpu_runs_bf16_natively() == bool({"avx512_bf16", "amx_tile"} & flags)
