"""The scenario names people read: the same words on buttons, in replies and in menus."""

from __future__ import annotations

from locales import N_
from models.vocab import Scenario

SCENARIO_LABELS = {
    Scenario.AGENT: N_("Our secretary answers"),
    Scenario.VOICEMAIL: N_("Voicemail"),
    Scenario.FORWARD: N_("Forward to my mobile"),
    Scenario.CLOSED: N_("Closed"),
}
