"""Sessions and CSRF for the web desk.

The cookie `fd_session` carries a random session id signed with `web.session_secret`
(itsdangerous): a forged or altered cookie is no session. The database keeps only the id's
SHA-256, the subscriber, the forms' CSRF token and the chosen language. Logging in always
makes a new session and deletes the one the browser brought (no session fixation).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from aiohttp import web
from itsdangerous import BadSignature, URLSafeSerializer

from gateway.web.links import digest
from models.web import WebSession

COOKIE = "fd_session"
COOKIE_PATH = "/desk"
SALT = "frontdesk.web.session"


class Sessions:
    def __init__(self, secret: str, hours: int) -> None:
        self._signer = URLSafeSerializer(secret, salt=SALT)
        self._hours = hours

    def _sid(self, request: web.Request) -> str | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            sid = self._signer.loads(raw)
        except BadSignature:
            return None
        return sid if isinstance(sid, str) else None

    async def current(self, request: web.Request, now: datetime) -> WebSession | None:
        """The browser's live session, if it has one."""
        sid = self._sid(request)
        if sid is None:
            return None
        return (
            await WebSession.filter(sid_hash=digest(sid), expires_at__gt=now)
            .select_related("subscriber")
            .first()
        )

    async def start(
        self, request: web.Request, response: web.StreamResponse, subscriber_id: int, now: datetime
    ) -> WebSession:
        """A new session for the subscriber; the browser's old one (any) is deleted."""
        old = self._sid(request)
        if old is not None:
            await WebSession.filter(sid_hash=digest(old)).delete()
        sid = secrets.token_urlsafe(32)
        session = await WebSession.create(
            sid_hash=digest(sid),
            subscriber_id=subscriber_id,
            csrf=secrets.token_urlsafe(32),
            expires_at=now + timedelta(hours=self._hours),
        )
        response.set_cookie(
            COOKIE,
            self._signer.dumps(sid),
            max_age=self._hours * 3600,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Lax",
            secure=request.secure,
        )
        # Expired sessions of anyone are of no use any more.
        await WebSession.filter(expires_at__lte=now).delete()
        return session

    async def end(self, session: WebSession, response: web.StreamResponse) -> None:
        await WebSession.filter(id=session.id).delete()
        response.del_cookie(COOKIE, path=COOKIE_PATH)


def csrf_ok(session: WebSession, sent: object) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(session.csrf.encode(), sent.encode())
