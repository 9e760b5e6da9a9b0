"""Sources, call tracker, router, outbox, control actions, web."""
