"""One module per channel behind one Notifier protocol."""
