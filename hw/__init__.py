"""Drivers for the lock's parts, each with a simulator that speaks the same protocol."""
