"""An end customer's reply to their reminder is its answer, before the command desk.

Subscribers' numbers are known senders and run commands; end customers are not. A reply
from a number with a sent, unanswered reminder that reads as an answer (1/2, yes/no) is
taken by the reminder; anything else goes on exactly as before (acknowledgement, then the
command desk's `on_text`). The message is stored first either way (InboundDesk.receive).
"""

from __future__ import annotations

from gateway.control.inbound import InboundDesk
from gateway.delivery.notices import Notices
from gateway.reminders.desk import Reminders


class ReminderInbound(InboundDesk):
    """The inbound desk with the reminders' answers as its screen."""

    def __init__(self, notices: Notices, reminders: Reminders) -> None:
        super().__init__(notices, screen=reminders.answer)
