"""The MQTT bridge (issue 17): HA discovery, the lock's state out, remote requests in."""
