import pytest
import torch

from asal.device import resolve_device, set_threads
from asal.errors import BadConfig


def test_auto_picks_cuda_only_when_available(monkeypatch):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    assert resolve_device("auto") == torch.device("cuda") and torch.backends.cudnn.deterministic


def test_every_torch_stage_takes_its_device_from_asal_device(monkeypatch):
    """The rules pass no --device: $ASAL_DEVICE (inherited by local and SLURM jobs) overrides auto."""
    from asal.cli import build_parser

    def device(env):
        if env is None:
            monkeypatch.delenv("ASAL_DEVICE", raising=False)
        else:
            monkeypatch.setenv("ASAL_DEVICE", env)
        return build_parser().parse_args(["project-features", "--space", "raw", "--pool", "p.h5", "--out", "f.h5"]).device

    assert device(None) == "auto"
    assert device("cpu") == "cpu" and device("cuda:1") == "cuda:1"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(BadConfig, match="CUDA was requested but torch sees no GPU"):
        resolve_device("cuda")


def test_set_threads():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
