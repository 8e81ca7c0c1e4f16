"""The power service: battery level and the USB-C emergency supply (L-28)."""
