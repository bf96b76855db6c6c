"""Fixtures for training tests."""
import pytest
import torch

from training_builders import make_corpus


@pytest.fixture()
def corpus(tmp_path):
    """(train, valid, test) paths of a tiny corpus."""
    return make_corpus(tmp_path)


@pytest.fixture(autouse=True)
def single_thread():
    """One torch thread: much faster on the shared 2-core machine, and deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
