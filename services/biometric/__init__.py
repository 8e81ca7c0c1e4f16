"""The biometric service: fingerprint and palm-vein modules on UARTs (arriving with issue 7)."""
