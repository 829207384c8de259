"""The ``--device`` and ``--precision`` options without importing torch (so ``semstream
--help`` stays fast).

:mod:`jscc.device` resolves the values once the models load.
"""

from __future__ import annotations

import argparse
import re

DEVICE_CHOICES = "auto | cpu | cuda | cuda:N"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
CUDA_SPEC = re.compile(r"cuda(?::(\d+))?")


def check_spec(spec: str) -> None:
    """Raise a one-line ValueError unless ``spec`` is spelled like a ``--device`` value.

    Only the spelling is checked: whether the machine has that GPU is decided when the
    models load (``jscc.device.resolve_device``), so a config stays valid on any machine.
    """
    text = str(spec).strip().lower()
    if text not in ("auto", "cpu") and CUDA_SPEC.fullmatch(text) is None:
        raise ValueError(f"unknown device {spec!r}: use {DEVICE_CHOICES}")


def check_precision(precision: str) -> None:
    """Raise a one-line ValueError unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use {' | '.join(PRECISIONS)}")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--device`` and ``--precision`` (both default auto) to ``parser``."""
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="where the models run: auto (a CUDA GPU when torch sees one, "
                             "else the CPU), cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="arithmetic of the JSCC model's convolutions: auto (fp16 on a "
                             "GPU; bf16 on a CPU that computes it in hardware, e.g. AMX, else "
                             "fp32), fp32, fp16 (GPU only) or bf16 (default auto)")
