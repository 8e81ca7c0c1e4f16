"""The owner's app gateway (issue 13): HTTP to owner requests to policy, events to the page."""
