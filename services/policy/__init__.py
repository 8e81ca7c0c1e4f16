"""The policy service: the lock's only decision maker and the only writer of its store."""
