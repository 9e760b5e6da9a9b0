"""Bottom layer: settings, domain events, database models. Imports nothing of ours above it."""
