"""Every notification kind's renderer, loaded: the registry the gateway's Notices use.

Each feature owns its kind (payload dataclass and renderer, in `<feature>/render.py`) and
registers it with gateway.delivery.render when imported; delivery never imports a feature,
so this module, above the features, is where they are all loaded. Importing it fails if a
kind of models.vocab.Kind has no renderer.
"""

from __future__ import annotations

from gateway.calls import render as _missed_call
from gateway.delivery import message_render as _message
from gateway.delivery.render import RENDERERS, Renderers
from gateway.diary import render as _appointment
from gateway.fax import render as _fax
from gateway.voicemail import render as _voicemail
from models.vocab import KINDS

__all__ = ["RENDERERS", "Renderers"]
LOADED = (_missed_call, _message, _voicemail, _fax, _appointment)

_missing = set(KINDS) - RENDERERS.kinds()
if _missing:
    raise ImportError(f"no renderer for kinds {sorted(_missing)}")
