"""Office-hours schedules: weekly periods, closures, overrides, switches."""

from __future__ import annotations
