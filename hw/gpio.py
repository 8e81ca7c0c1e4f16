"""The gpiozero pin factory, chosen by configuration: MockFactory on the simulated board."""

from __future__ import annotations

from gpiozero import Factory


class BoardError(RuntimeError):
    """The board named in the configuration cannot be driven here."""


def pin_factory(kind: str) -> Factory:
    if kind == "sim":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if kind == "pi":
        try:
            from gpiozero.pins.lgpio import LGPIOFactory
        except ImportError as e:
            raise BoardError(f"board 'pi' needs the lgpio package: {e}") from e
        return LGPIOFactory()
    raise BoardError(f"unknown board kind {kind!r} (expected 'sim' or 'pi')")
