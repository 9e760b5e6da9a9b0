"""Call lists (campaigns) worked by agents."""

from __future__ import annotations
