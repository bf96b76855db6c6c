"""The one resolve_device."""
import pytest
import torch

from rescorer.devices import resolve_device
from rescorer.errors import ConfigError


def test_cpu_auto_and_unknown_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert resolve_device("auto") == expected
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_user_error():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
