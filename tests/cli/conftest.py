"""Shared by the CLI tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def restore_threads():
    """rescore --threads sets torch's thread count; put it back for the tests that follow."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
