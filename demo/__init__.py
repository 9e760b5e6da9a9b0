"""The demo: a short day at the office, played against the sandbox."""
