"""Shared test setup."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    # The unit tests use tiny tensors: a second OpenMP thread only adds synchronisation, and when
    # other jobs share the 2 cores the threads spin-wait on each other (a step got ~30x slower).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
