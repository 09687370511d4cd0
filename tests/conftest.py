"""Shared fixtures: the device picks CUDA only when present (CPU everywhere else)."""

import pytest
import torch


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
