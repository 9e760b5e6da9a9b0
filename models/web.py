"""The web desk: magic-link logins, sessions and the link requests' rate limit.

Tokens and session ids are stored as SHA-256 hashes only: a copy of the database opens
no desk. Every state change that could race is one conditional UPDATE (a link is used
once; a rate-limit bucket counts up only below its limit).
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.db import Subscriber


class WebLink(Model):
    """A magic link: single use (used_at), valid until expires_at."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="web_links", on_delete=fields.CASCADE
    )
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "web_link"


class WebSession(Model):
    """A logged-in browser: the cookie carries the session id (signed), we keep its hash."""

    id = fields.IntField(primary_key=True)
    sid_hash = fields.CharField(max_length=64, unique=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="web_sessions", on_delete=fields.CASCADE
    )
    csrf = fields.CharField(max_length=64)  # the forms' hidden token, bound to this session
    lang = fields.CharField(max_length=8, null=True)  # chosen with ?lang=; None: subscriber's
    expires_at = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "web_session"


class WebLinkBucket(Model):
    """How many links were asked for by one key (an address or a client IP, hashed) in one
    clock hour: counted up by a conditional UPDATE, so racing requests cannot pass it."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=64)
    window = fields.DatetimeField(db_index=True)  # the hour's start (UTC)
    count = fields.IntField(default=0)

    class Meta:
        table = "web_link_bucket"
        unique_together = (("key", "window"),)
