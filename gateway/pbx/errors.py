"""The one error the PBX package lets out: whatever went wrong on AMI, callers learn only
that the phone system did not do what was asked.

AmiUnavailable and AmiActionError are the package's own finer kinds (raised by
AmiClient); code outside gateway/pbx catches PbxUnavailable and never names them
(tests/unit/test_pbx_actions.py checks).
"""

from __future__ import annotations

from locales import N_

# What people are told when the PBX did not do what they asked (every desk says it so).
UNREACHABLE = N_("The phone system is not reachable right now; try again in a minute.")


class PbxUnavailable(RuntimeError):
    """The PBX did not carry out an action: not connected, no answer in time, or refused."""


class AmiUnavailable(PbxUnavailable):
    """Asterisk is not connected (or did not answer in time); the action was not sent."""


class AmiActionError(PbxUnavailable):
    """Asterisk answered the action with an error."""
