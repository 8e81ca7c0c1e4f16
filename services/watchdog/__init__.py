"""The watchdog: hears every heartbeat, tells who is alive, and restarts the stuck."""
