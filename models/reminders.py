"""Reminders to end customers about their appointments."""

from __future__ import annotations
