from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# The project's seeds live in ../shared/seeds beside the repo (read-only; CI has them there too): real
# recordings made by another tool (other names, other hash).
SEEDS = next((p for p in (Path(__file__).resolve().parents[3] / "shared" / "seeds", Path("/work/shared/seeds"))
              if p.is_dir()), Path("/work/shared/seeds"))  # beside the repo; /work/shared from a worktree


@pytest.fixture
def rec_dir(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


@pytest.fixture
def seeds_dir(tmp_path: Path) -> Path:
    """The five real recordings, copied as-is (names and all) into a fresh directory."""
    path = tmp_path / "seeds"
    path.mkdir()
    for seed in sorted(SEEDS.glob("*.json")):
        shutil.copy(seed, path / seed.name)
    return path
