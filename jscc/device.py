"""Which torch device a command runs its models on: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

``auto`` takes the first CUDA GPU when torch sees one and the CPU otherwise. Asking for
CUDA on a machine without it, or for a GPU index that does not exist, is an error that
says what torch sees and what to pass instead.
"""

from __future__ import annotations

import torch

from jscc.device_option import CUDA_SPEC as _CUDA
from jscc.device_option import DEVICE_CHOICES, check_precision


def resolve_device(spec: str) -> torch.device:
    """The torch device for a ``--device`` value (see the module docstring)."""
    text = spec.strip().lower()
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = _CUDA.fullmatch(text)
    if match is None:
        raise ValueError(f"unknown device {spec!r}: use {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {spec}: torch sees no CUDA GPU on this machine "
                         "(CPU-only torch build or no driver); use --device cpu or auto")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA "
                         f"GPU(s), cuda:0..cuda:{torch.cuda.device_count() - 1}")
    return torch.device(f"cuda:{index}")


def describe(device: torch.device) -> str:
    """One line for start-up logs: the device and, for a GPU, its name."""
    if device.type == "cuda":
        return f"models on {device} ({torch.cuda.get_device_name(device)})"
    return f"models on the CPU ({torch.get_num_threads()} torch threads)"


# --- saying where the models run -----------------------------------------------------------

def announce(spec: str, command: str, segmenter: str | None = None, file=None) -> str:
    """Resolve ``spec``, say once where the models run (and rembg, when ``segmenter`` uses
    it), and return the resolved device name (e.g. "cpu", "cuda:0").

    file: where to say it, default stdout (as ``jscc eval`` does: stderr stays one line
    when the command then fails); a command whose stdout is its JSON passes stderr.
    """
    device = resolve_device(spec)
    line = f"semstream {command}: {describe(device)}"
    if segmenter is not None and "rembg:" in segmenter:
        _, note = onnx_providers(str(device))
        where = "on the CPU" if device.type == "cpu" else f"on {device} ({_ORT_CUDA})"
        line += f"; rembg {note or where}"
    print(line, file=file, flush=True)
    return str(device)


# --- onnxruntime (rembg) ------------------------------------------------------------------

_ORT_CUDA = "CUDAExecutionProvider"


def onnx_providers(device: str) -> tuple[list, str | None]:
    """onnxruntime providers for a resolved device name, and a note when ``device`` is a
    GPU that onnxruntime cannot use (no CUDA provider installed: the CPU runs it)."""
    cpu = ["CPUExecutionProvider"]
    if not device.startswith("cuda"):
        return cpu, None
    import onnxruntime

    if _ORT_CUDA not in onnxruntime.get_available_providers():
        return cpu, ("on the CPU: this onnxruntime has no CUDAExecutionProvider "
                     "(install onnxruntime-gpu to run it on the GPU)")
    index = int(device.partition(":")[2] or 0)
    return [(_ORT_CUDA, {"device_id": index}), *cpu], None


# --- mixed precision ---------------------------------------------------------------------

def cpu_bf16_native() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX tiles or AVX512-BF16); elsewhere
    torch emulates it, slower than fp32."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype of the convolutions on ``device``; None means plain fp32.

    On a GPU, "auto" is fp16: bf16 keeps only 8 bits of mantissa, too coarse for RIFE's
    flow in pixels. On the CPU, "auto" and "fp32" run fp32 and "bf16" runs bf16 autocast
    (worth it only where :func:`cpu_bf16_native`); fp16 is refused there.
    """
    check_precision(precision)
    if device.type != "cuda":
        if precision == "fp16":
            raise ValueError("precision fp16 runs on a GPU only: on the CPU use bf16 or fp32")
        return torch.bfloat16 if precision == "bf16" else None
    if precision == "fp32":
        return None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def jscc_precision(device: torch.device, precision: str = "auto") -> str:
    """The JSCC codec's arithmetic, "fp32", "fp16" or "bf16", for a ``--precision`` value:
    like :func:`autocast_dtype`, except that "auto" on a CPU that computes bf16 in hardware
    is bf16 (1.3-1.7x faster for the JSCC model at -0.02..0.00 dB,
    ``docs/results/jscc/README.md``)."""
    if precision == "auto" and device.type != "cuda" and cpu_bf16_native():
        precision = "bf16"
    dtype = autocast_dtype(device, precision)
    return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]


def _as_float32(value):
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, tuple | list):
        return type(value)(_as_float32(v) for v in value)
    return value


class Autocast(torch.nn.Module):
    """``inner`` run under autocast at ``dtype``; its floating outputs come back fp32, so
    whatever follows (power normalisation, the channel, warping) stays in fp32."""

    def __init__(self, inner: torch.nn.Module, dtype: torch.dtype,
                 device_type: str = "cuda") -> None:
        super().__init__()
        self.inner = inner
        self.dtype = dtype
        self.device_type = device_type

    def forward(self, *args, **kwargs):
        """``inner(*args, **kwargs)`` under autocast, floating tensors cast back to fp32."""
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.inner(*args, **kwargs)
        return _as_float32(out)


def autocast_children(model: torch.nn.Module, names: tuple[str, ...],
                      dtype: torch.dtype | None, device_type: str = "cuda") -> torch.nn.Module:
    """Wrap the child modules ``names`` of ``model`` in :class:`Autocast` (in place; nothing
    when ``dtype`` is None); returns ``model``."""
    if dtype is not None:
        for name in names:
            setattr(model, name, Autocast(getattr(model, name), dtype, device_type))
    return model
