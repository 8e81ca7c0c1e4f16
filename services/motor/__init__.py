"""The motor service: every GPIO part of the lock; it obeys actuation commands from policy alone."""
