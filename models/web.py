"""The web desk: magic-link logins and sessions."""

from __future__ import annotations
