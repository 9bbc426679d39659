"""Where a run executes: device, mixed precision, DistributedDataParallel, seeds and RNG state."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ContextManager

import numpy as np
import torch
import torch.distributed as dist

from utrack.errors import ConfigError


@dataclass
class Runtime:
    """The process's place in a (possibly distributed) run."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    amp: bool = False  # float16 autocast + GradScaler, CUDA only
    cpu_bf16: bool = False  # bfloat16 autocast on CPU (train.cpu_bf16), no scaler

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and results."""
        return self.rank == 0

    @property
    def precision(self) -> str:
        """What the training forward computes in (for logs and checkpoint metadata)."""
        if self.amp:
            return "float16 autocast"
        return "bfloat16 autocast" if self.cpu_bf16 else "float32"

    def autocast(self) -> ContextManager:
        """The training forward's mixed-precision context (the losses compute in float32)."""
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        if self.cpu_bf16:
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
        return nullcontext()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when present (this process's local GPU), else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name!r} but CUDA is not available on this machine")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise ConfigError(f"train.device={name!r}: expected auto, cpu, cuda or cuda:N")
    return torch.device(name)


def cpu_runs_bf16_natively() -> bool:
    """True when this CPU has AVX512-BF16 or AMX, where oneDNN runs bfloat16 convolutions
    natively (elsewhere it emulates them, often slower than float32)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private: may go away
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def setup_runtime(device: str = "auto", amp: bool = True, cpu_bf16: bool | str = False) -> Runtime:
    """Initialise the process group when launched by ``torchrun`` (WORLD_SIZE > 1): NCCL on
    CUDA, gloo on CPU. ``amp`` (float16) takes effect on CUDA only, ``cpu_bf16`` (bfloat16) on
    the CPU only; ``cpu_bf16="auto"`` turns it on where :func:`cpu_runs_bf16_natively`."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if cpu_bf16 == "auto":
        cpu_bf16 = cpu_runs_bf16_natively()
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(device=dev, rank=rank, world_size=world_size, local_rank=local_rank,
                   amp=bool(amp and dev.type == "cuda"),
                   cpu_bf16=bool(cpu_bf16 and dev.type == "cpu"))


def teardown_runtime(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state a resumed run needs to continue exactly."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.as_tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def reduce_mean(value: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Mean of a scalar over all ranks (for logging)."""
    if not runtime.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / runtime.world_size
