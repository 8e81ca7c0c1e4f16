"""The ble service: the lock's Bluetooth LE peripheral, a relay to policy (issue 16)."""
