"""`python -m utrack` / `utrack --version`: print versions and the compute device found."""

from __future__ import annotations

import argparse
import platform

from utrack import __version__


def environment_report() -> str:
    """Versions of utrack and its main dependencies, and the device a run would use."""
    import numpy
    import torch
    import torchvision

    lines = [
        f"utrack {__version__}",
        f"python {platform.python_version()}",
        f"torch {torch.__version__}",
        f"torchvision {torchvision.__version__}",
        f"numpy {numpy.__version__}",
    ]
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        lines.append(f"device cuda ({torch.cuda.device_count()}: {names})")
    else:
        lines.append(f"device cpu ({torch.get_num_threads()} threads)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="utrack", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print versions and the device")
    parser.parse_args(argv)
    print(environment_report())


if __name__ == "__main__":
    main()
