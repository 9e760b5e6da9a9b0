"""The one error the PBX package lets out: whatever went wrong on AMI, callers learn only
that the phone system did not do what was asked."""

from __future__ import annotations


class PbxUnavailable(RuntimeError):
    """The PBX did not carry out an action: not connected, no answer in time, or refused."""
