"""Device selection for --device: auto picks CPU here, CUDA requests fail with one line."""

import json

import numpy as np
import pytest
import torch

from jscc.device import describe, resolve_device


def test_auto_and_cpu_resolve_to_what_torch_sees():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert "CPU" in describe(torch.device("cpu")) or expected == "cuda"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_a_one_line_error(spec):
    with pytest.raises(ValueError, match="torch sees no CUDA GPU") as err:
        resolve_device(spec)
    assert "\n" not in str(err.value) and "--device cpu" in str(err.value)


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "mps0", ""])
def test_unknown_device_names_the_choices(spec):
    with pytest.raises(ValueError, match="auto | cpu | cuda | cuda:N"):
        resolve_device(spec)


# --- every model-running command takes --device (through the CLI's main) -------------------

def _commands(tmp_path, samples) -> dict[str, list[str]]:
    clip = str(samples / "carphone.mp4")
    return {
        "run": ["run", clip, "--max-frames", "2"],
        "send": ["send", clip, "--to", "127.0.0.1:9", "--token", "t", "--max-frames", "2"],
        "receive": ["receive", "--listen", "127.0.0.1:0", "--token", "t"],
        "live": ["live", clip, "--max-frames", "2"],
        "experiment": ["experiment", "--clips", clip, "--out", str(tmp_path / "x")],
        "interp": ["interp", clip, "--max-frames", "2", "--methods", "blend"],
        "jscc eval": ["jscc", "eval", "--data", str(tmp_path / "none")],
        "jscc train": ["jscc", "train", "--data", str(tmp_path / "none"),
                       "--out", str(tmp_path / "run")],
        "bg build": ["bg", "build", clip, "--out", str(tmp_path / "lib")],
    }


NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


@pytest.mark.parametrize("spec,message", [
    ("gpu0", "unknown device 'gpu0'"),
    pytest.param("cuda", "torch sees no CUDA GPU", marks=NO_GPU),
    pytest.param("cuda:1", "torch sees no CUDA GPU", marks=NO_GPU),
])
def test_each_command_takes_device_and_refuses_a_bad_one_in_one_line(tmp_path, samples, capsys,
                                                                      spec, message):
    from stream.cli import main

    for name, argv in _commands(tmp_path, samples).items():
        assert main([*argv, "--device", spec]) == 2, name
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err and err.startswith("semstream"), (name, err)


def test_run_on_auto_says_the_device_once_and_reports_it(tmp_path, samples, capsys):
    from stream.cli import main

    report = tmp_path / "r.json"
    assert main(["run", str(samples / "carphone.mp4"), "--max-frames", "2", "--mode", "direct",
                 "--json", str(report)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "models on" in ln]
    expected = str(resolve_device("auto"))
    assert len(lines) == 1 and lines[0].startswith("semstream run: models on")
    data = json.loads(report.read_text())
    assert data["device"] == expected == data["config"]["sender"]["device"]


def test_configs_check_the_spelling_of_the_device_only():
    from stream.core.config import ReceiverConfig, SenderConfig

    assert SenderConfig(device="cuda:3").device == "cuda:3"  # resolved when models load
    for config in (SenderConfig, ReceiverConfig):
        with pytest.raises(ValueError, match="unknown device 'tpu'"):
            config(device="tpu")
        with pytest.raises(ValueError, match="unknown precision 'half'"):
            config(precision="half")


# --- rembg's providers, mixed precision ---------------------------------------------------

def test_onnx_providers_fall_back_to_the_cpu_with_a_note():
    import onnxruntime

    from jscc.device import onnx_providers

    assert onnx_providers("cpu") == (["CPUExecutionProvider"], None)
    providers, note = onnx_providers("cuda:1")
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert providers[0] == ("CUDAExecutionProvider", {"device_id": 1}) and note is None
    else:
        assert providers == ["CPUExecutionProvider"] and "onnxruntime-gpu" in note


def test_the_cpu_runs_fp32_unless_bf16_is_asked_for():
    from jscc.device import autocast_dtype

    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "auto") is None and autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    with pytest.raises(ValueError, match="GPU only"):
        autocast_dtype(cpu, "fp16")
    with pytest.raises(ValueError, match="unknown precision"):
        autocast_dtype(cpu, "fp8")


def test_jscc_auto_precision_is_bf16_where_the_cpu_computes_it():
    from jscc.codec import JSCCCodec
    from jscc.device import cpu_bf16_native, jscc_precision

    cpu = torch.device("cpu")
    assert jscc_precision(cpu, "auto") == ("bf16" if cpu_bf16_native() else "fp32")
    assert jscc_precision(cpu, "fp32") == "fp32" and jscc_precision(cpu, "bf16") == "bf16"
    assert jscc_precision(torch.device("cuda"), "auto") == "fp16"
    assert JSCCCodec.load("edge", precision="fp32").precision == "fp32"


def test_autocast_stages_keep_the_symbols_fp32_at_unit_energy(samples):
    """bf16 on the CPU (the GPU's wrapping): same symbols layout, unit energy, complex64,
    and nearly the fp32 PSNR."""
    from dynbg.video import read_frames
    from jscc.codec import JSCCCodec
    from jscc.device import Autocast
    from jscc.metrics import psnr

    image = next(read_frames(samples / "carphone.mp4", max_frames=1)).image
    plain = JSCCCodec.load("edge")
    mixed = JSCCCodec.load("edge", precision="bf16")
    assert isinstance(mixed.model.source_decoder, Autocast)
    assert mixed.model.source_decoder.device_type == "cpu"
    a, b = plain.encode(image, 10.0, level=2), mixed.encode(image, 10.0, level=2)
    assert b.symbols.dtype == np.complex64 and b.symbols.shape == a.symbols.shape
    assert np.mean(np.abs(b.symbols) ** 2) == pytest.approx(1.0, abs=1e-4)
    assert abs(psnr(image, mixed.decode(b)) - psnr(image, plain.decode(a))) < 0.5


@NO_GPU
def test_gpu_check_without_cuda_exits_with_one_line():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no CUDA GPU" in done.stderr
