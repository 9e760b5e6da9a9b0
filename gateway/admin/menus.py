"""The admins' desk in Telegram: /admin opens a menu of inline keyboards (subscribers, a
paged list and each one's card; staff and teams; adding admins), and guided forms
(gateway/admin/forms.py) change what the cards show.

Every press and typed answer starts from the chat: who is acting (staff/identity), and
`rights.allowed` for managing subscribers or staff; a stranger, or staff without the
rank, is refused and the attempt audited, and nothing changes. Every change is audited
(channel telegram, the admin's chat as actor) and a subscriber's or DDI's goes to the PBX
at once (`push_lines`: the AstDB keys the dialplan reads). When the PBX cannot be reached
the database keeps the change and the next AMI login writes it (Control.reassert_all).

Button data: `ad:<action>[:<args>]` (gateway/control/callbacks.py); ids only, so a
button pressed after a restart works, and a forged one names nothing the rights allow.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.admin import forms
from gateway.admin.forms import Problem
from gateway.control import admin, audit, callbacks
from gateway.pbx.errors import PbxUnavailable
from gateway.staff import people
from gateway.staff.identity import staff_of_chat
from gateway.staff.replies import Buttons, Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Owner, Staff, allowed
from locales import N_, tr
from models.db import Ddi, Role, RoutingPreference, Subscriber, User
from models.staff import Agent, Conversation
from models.vocab import Channel, Scenario

log = logging.getLogger(__name__)

PushLines = Callable[[Subscriber], Awaitable[None]]
Row = tuple[tuple[str, str], ...]
PAGE = 8  # subscribers or staff per page
STAFF_ACTIONS = frozenset(("st", "sa", "tm", "sc", "na"))
STAFF_FORMS = frozenset(("staff", "team", "admin"))

MENU = N_("Admin menu")
SUBSCRIBERS = N_("Subscribers")
NEW_SUBSCRIBER = N_("New subscriber")
STAFF = N_("Staff & teams")
ADD_ADMIN = N_("Add admin")
BACK = N_("« Back")
PREVIOUS, NEXT = N_("‹ Previous"), N_("Next ›")
NONE_YET = N_("None yet.")
PAGE_OF = N_("Page {page} of {pages}")
SAVED = N_("Saved.")
CANCELLED = N_("Cancelled.")
STEP_OVER = N_("That question has been answered already.")
PBX_LATER = N_("The PBX cannot be reached now: it gets the change when it is back.")
CANNOT = N_("That cannot be done: {reason}")
GONE = N_("It is not there any more.")
NOW = N_("Now: {value}")
LINK_CODE = N_("Link code for {name}: {code} (they send /start {code} to the bot)")
NEW_PIN = N_("New SMS PIN for {name}: {pin}. It is shown this once: pass it on now.")
CREATED = N_("Subscriber {name} created.")
STAFF_CREATED = N_("{name} added as {role}.")
TEAM_CREATED = N_("Team {name} created.")
FIELD_LABELS = {
    "name": N_("Name"),
    "language": N_("Language"),
    "timezone": N_("Time zone"),
    "mobile": N_("Mobile"),
    "email": N_("Email"),
    "forward": N_("Forward to"),
    "quiet": N_("Quiet hours"),
    "scenario": N_("Scenario"),
    "instructions": N_("Instructions"),
    "greeting": N_("Greeting"),
}
REMOVE, SKIP = N_("Remove"), N_("Skip")
ADMIN_LABEL = N_("Admin")


class AdminDesk:
    def __init__(
        self, push_lines: PushLines, region: str = "GR", timezone: str = "Europe/Athens"
    ) -> None:
        self._push_lines = push_lines
        self._region = region
        self._timezone = timezone

    # -- who acts --------------------------------------------------------------------------

    async def _admin(
        self, chat_id: int, tg: str | None, what: str, act: Act | None
    ) -> tuple[Agent, Staff, str] | Reply:
        """The acting admin, or the (audited) refusal to show instead."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return await not_staff(chat_id, language(None, tg), what)
        agent, actor = found
        lang = language(agent, tg)
        if act is not None and not allowed(actor, act, Owner()):
            return await refuse(chat_id, lang, what, why=f"{act} ({actor.role})")
        return agent, actor, lang

    # -- entry points ----------------------------------------------------------------------

    async def menu(self, chat_id: int, tg: str | None) -> Reply:
        """/admin: the main menu."""
        who = await self._admin(chat_id, tg, "/admin", Act.MANAGE_SUBSCRIBERS)
        if isinstance(who, Reply):
            return who
        return self._main(who[2])

    async def press(self, chat_id: int, data: str, tg: str | None) -> Reply:
        """Any `ad:` button."""
        parts = callbacks.unpack_admin(data)
        act = Act.MANAGE_SUBSCRIBERS
        conversation: Conversation | None = None
        if parts and parts[0] in STAFF_ACTIONS:
            act = Act.MANAGE_STAFF
        if parts and parts[0] == "f" and len(parts) == 4 and (cid := callbacks.parse_id(parts[1])):
            conversation = await Conversation.get_or_none(id=cid, kind=forms.KIND)
            if conversation is not None and conversation.answers.get("form") in STAFF_FORMS:
                act = Act.MANAGE_STAFF
        who = await self._admin(chat_id, tg, data, act)
        if isinstance(who, Reply):
            return who
        agent, _, lang = who
        if not parts:
            return await refuse(chat_id, lang, data, why="no such button")
        action, args = parts[0], parts[1:]
        if action == "f":
            if conversation is None or conversation.agent_id != agent.id:  # type: ignore[attr-defined]
                return await refuse(chat_id, lang, data, why="not their form")
            if conversation.done or args[1] != conversation.step:
                return Reply(toast=tr(lang, STEP_OVER))
            return await self._answer(conversation, chat_id, lang, choice=args[2])
        reply = await self._show(action, args, agent, chat_id, lang)
        return reply if reply is not None else await refuse(chat_id, lang, data, why="bad data")

    async def text(self, chat_id: int, text: str, tg: str | None) -> Reply | None:
        """Typed text: the answer to the admin's open form; None when they have none."""
        found = await staff_of_chat(chat_id)
        if found is None:
            return None
        agent, _ = found
        conversation = (
            await Conversation.filter(agent=agent, done=False, kind=forms.KIND)
            .order_by("-id")
            .first()
        )
        if conversation is None:
            return None
        form = conversation.answers.get("form")
        act = Act.MANAGE_STAFF if form in STAFF_FORMS else Act.MANAGE_SUBSCRIBERS
        who = await self._admin(chat_id, tg, f"admin form {form}", act)
        if isinstance(who, Reply):  # a demoted admin's open form
            return who
        return await self._answer(conversation, chat_id, who[2], text=text)

    # -- menus, lists and cards ------------------------------------------------------------

    async def _show(
        self, action: str, args: tuple[str, ...], agent: Agent, chat_id: int, lang: str
    ) -> Reply | None:
        one = callbacks.parse_id(args[0]) if len(args) == 1 else None
        page = int(args[0]) if len(args) == 1 and args[0].isdigit() and len(args[0]) < 6 else None
        match action, args:
            case "m", ():
                return self._main(lang)
            case "sl", _ if page is not None:
                return await self._subscribers(lang, page)
            case "st", _ if page is not None:
                return await self._staff(lang, page)
            case "s", _ if one:
                return await self._card(one, lang)
            case "e", (sid, field) if callbacks.parse_id(sid) and field in forms.FIELDS:
                sub = await Subscriber.get_or_none(id=int(sid))
                if sub is None:
                    return Reply(toast=tr(lang, GONE))
                base = {"subscriber_id": sub.id, "subscriber": sub.name}
                return await self._open(agent, lang, "edit", base | {"field": field})
            case "rt" | "ddi", _ if one:
                sub = await Subscriber.get_or_none(id=one)
                if sub is None:
                    return Reply(toast=tr(lang, GONE))
                form = "route" if action == "rt" else "ddi"
                return await self._open(
                    agent, lang, form, {"subscriber_id": one, "subscriber": sub.name}
                )
            case "mb", _ if one:
                ddi = await Ddi.get_or_none(id=one).select_related("subscriber")
                if ddi is None:
                    return Reply(toast=tr(lang, GONE))
                a = {"ddi_id": ddi.id, "ddi": ddi.number, "subscriber_id": ddi.subscriber.id}
                return await self._open(agent, lang, "mailbox", a)
            case "pin", _ if one:
                return await self._reset_pin(one, chat_id, lang)
            case "code", _ if one:
                return await self._link_code(one, chat_id, lang)
            case "sc", _ if one:
                return await self._staff_code(one, chat_id, lang)
            case "ns" | "sa" | "tm" | "na", ():
                form = {"ns": "new_sub", "sa": "staff", "tm": "team", "na": "admin"}[action]
                return await self._open(agent, lang, form, {})
        return None

    def _main(self, lang: str) -> Reply:
        rows: Buttons = (
            ((tr(lang, SUBSCRIBERS), callbacks.admin("sl", 0)),),
            ((tr(lang, NEW_SUBSCRIBER), callbacks.admin("ns")),),
            ((tr(lang, STAFF), callbacks.admin("st", 0)),),
            ((tr(lang, ADD_ADMIN), callbacks.admin("na")),),
        )
        return Reply(tr(lang, MENU), rows)

    def _pager(self, lang: str, action: str, page: int, total: int) -> Row:
        row: list[tuple[str, str]] = []
        if page > 0:
            row.append((tr(lang, PREVIOUS), callbacks.admin(action, page - 1)))
        if (page + 1) * PAGE < total:
            row.append((tr(lang, NEXT), callbacks.admin(action, page + 1)))
        return tuple(row)

    async def _subscribers(self, lang: str, page: int) -> Reply:
        total = await Subscriber.all().count()
        pages = max(1, -(-total // PAGE))
        page = min(page, pages - 1)
        found = await Subscriber.all().order_by("name", "id").offset(page * PAGE).limit(PAGE)
        lines = [tr(lang, SUBSCRIBERS), tr(lang, PAGE_OF, page=page + 1, pages=pages)]
        if not found:
            lines.append(tr(lang, NONE_YET))
        rows: list[Row] = [((f"{s.name} (#{s.id})", callbacks.admin("s", s.id)),) for s in found]
        if pager := self._pager(lang, "sl", page, total):
            rows.append(pager)
        rows.append(((tr(lang, NEW_SUBSCRIBER), callbacks.admin("ns")),))
        rows.append(((tr(lang, BACK), callbacks.admin("m")),))
        return Reply("\n".join(lines), tuple(rows))

    async def _card(self, subscriber_id: int, lang: str, head: str = "") -> Reply:
        s = await Subscriber.get_or_none(id=subscriber_id)
        if s is None:
            return Reply(toast=tr(lang, GONE))
        ddis = await Ddi.filter(subscriber=s).order_by("id")
        routes = await RoutingPreference.filter(subscriber=s).order_by("kind", "urgency")

        def line(field: str, value: str) -> str:
            return f"{tr(lang, FIELD_LABELS[field])}: {value or '—'}"

        quiet = f"{s.quiet_start}-{s.quiet_end}" if s.quiet_start else ""
        lines = [head] if head else []
        lines += [
            f"{s.name} (#{s.id})",
            line("language", forms.LANGUAGE_NAMES.get(s.language, s.language)),
            line("timezone", s.timezone),
            line("scenario", forms.scenario_label(lang, s.scenario.value)),
            tr(lang, "DDIs: {ddis}", ddis=", ".join(_ddi(d) for d in ddis) or "—"),
            line("mobile", s.mobile or ""),
            line("email", s.email or ""),
            line("forward", s.forward_number or ""),
            line("quiet", quiet),
        ]
        for r in routes:
            kind = tr(lang, forms.KIND_LABELS[r.kind]) if r.kind in forms.KIND_LABELS else r.kind
            urgent = f" ({tr(lang, 'Urgent')})" if r.urgency == "urgent" else ""
            lines.append(
                tr(
                    lang,
                    "Route {kind}: {channels}",
                    kind=kind + urgent,
                    channels=" → ".join(r.channels),
                )
            )
        lines.append(line("instructions", s.instructions))
        lines.append(line("greeting", s.greeting))
        pin = tr(lang, "set") if s.sms_pin_hash else tr(lang, "not set")
        lines.append(tr(lang, "SMS PIN: {state}", state=pin))

        def edit(field: str) -> tuple[str, str]:
            return (tr(lang, FIELD_LABELS[field]), callbacks.admin("e", s.id, field))

        rows: list[Row] = [
            (edit("name"), edit("language"), edit("timezone")),
            (edit("mobile"), edit("email"), edit("forward")),
            (edit("quiet"), edit("scenario"), (tr(lang, "Routes"), callbacks.admin("rt", s.id))),
            (edit("instructions"), edit("greeting")),
            ((tr(lang, "Add DDI"), callbacks.admin("ddi", s.id)),),
        ]
        mailboxes = [
            (tr(lang, "Mailbox {ddi}", ddi=d.number), callbacks.admin("mb", d.id)) for d in ddis
        ]
        rows += [tuple(mailboxes[i : i + 2]) for i in range(0, len(mailboxes), 2)]
        rows.append(
            (
                (tr(lang, "Reset PIN"), callbacks.admin("pin", s.id)),
                (tr(lang, "New link code"), callbacks.admin("code", s.id)),
            )
        )
        rows.append(((tr(lang, BACK), callbacks.admin("sl", 0)),))
        return Reply("\n".join(lines), tuple(rows))

    async def _staff(self, lang: str, page: int, head: str = "") -> Reply:
        total = await Agent.all().count()
        pages = max(1, -(-total // PAGE))
        page = min(page, pages - 1)
        found = (
            await Agent.all()
            .order_by("id")
            .offset(page * PAGE)
            .limit(PAGE)
            .select_related("user", "team")
        )
        lines = [head] if head else []
        lines += [tr(lang, STAFF), tr(lang, PAGE_OF, page=page + 1, pages=pages)]
        rows: list[Row] = []
        for a in found:
            team = a.team.name if a.team is not None else "—"
            linked = "✓" if a.user.telegram_chat_id else "✗"
            lines.append(
                f"#{a.id} {a.user.name} · {a.user.role} · {team} · {a.interface or '—'} · {linked}"
            )
            label = tr(lang, "Link code: {name}", name=a.user.name)
            rows.append(((label, callbacks.admin("sc", a.id)),))
        if not found:
            lines.append(tr(lang, NONE_YET))
        if pager := self._pager(lang, "st", page, total):
            rows.append(pager)
        rows.append(
            (
                (tr(lang, "Add staff"), callbacks.admin("sa")),
                (tr(lang, "New team"), callbacks.admin("tm")),
            )
        )
        rows.append(((tr(lang, BACK), callbacks.admin("m")),))
        return Reply("\n".join(lines), tuple(rows))

    # -- one-press changes -----------------------------------------------------------------

    async def _reset_pin(self, subscriber_id: int, chat_id: int, lang: str) -> Reply:
        s = await Subscriber.get_or_none(id=subscriber_id)
        if s is None:
            return Reply(toast=tr(lang, GONE))
        pin = f"{secrets.randbelow(10**6):06d}"
        await admin.set_contact_points(s.id, pin=pin)  # hashed; failures and lock reset
        await audit.record(Channel.TELEGRAM, str(chat_id), s, "admin: reset pin", audit.DONE)
        card = await self._card(s.id, lang)
        return Reply(
            f"{tr(lang, NEW_PIN, name=s.name, pin=pin)}\n\n{card.text}",
            card.buttons,
            tr(lang, SAVED),
        )

    async def _link_code(self, subscriber_id: int, chat_id: int, lang: str) -> Reply:
        s = await Subscriber.get_or_none(id=subscriber_id)
        if s is None:
            return Reply(toast=tr(lang, GONE))
        code = await admin.new_link_code(s)
        await audit.record(Channel.TELEGRAM, str(chat_id), s, "admin: link code", audit.DONE)
        return await self._card(s.id, lang, tr(lang, LINK_CODE, name=s.name, code=code))

    async def _staff_code(self, agent_id: int, chat_id: int, lang: str) -> Reply:
        agent = await Agent.get_or_none(id=agent_id).select_related("user")
        if agent is None:
            return Reply(toast=tr(lang, GONE))
        code = await people.new_staff_code(agent.id)
        what = f"admin: staff link code {agent.id}"
        await audit.record(Channel.TELEGRAM, str(chat_id), None, what, audit.DONE)
        return await self._staff(lang, 0, tr(lang, LINK_CODE, name=agent.user.name, code=code))

    # -- forms -----------------------------------------------------------------------------

    async def _open(self, agent: Agent, lang: str, form: str, a: dict[str, Any]) -> Reply:
        a = {**a, "form": form}
        async with in_transaction():
            # One exchange at a time: the text typed next is this form's.
            await Conversation.filter(agent=agent, done=False).update(done=True, step="cancelled")
            first = forms.next_step(a, None)
            assert first is not None
            conversation = await Conversation.create(
                agent=agent, kind=forms.KIND, step=first, answers=a
            )
        log.info("admin form %s (%s) opened by agent %s", conversation.id, form, agent.id)
        return await self._prompt(conversation, lang)

    async def _prompt(self, conversation: Conversation, lang: str, problem: str = "") -> Reply:
        a, cid = conversation.answers, conversation.id
        step = forms.step_named(a, conversation.step)
        assert step is not None
        lines = [
            tr(
                lang,
                forms.TITLES[a["form"]],
                subscriber=a.get("subscriber", ""),
                ddi=a.get("ddi", ""),
            )
        ]
        if a["form"] == "edit" or a["form"] == "mailbox":
            current = await self._current(a)
            lines.append(tr(lang, NOW, value=current or "—"))
        if problem:
            lines.append(problem)
        lines.append(tr(lang, step.question))

        def b(label: str, choice: str) -> tuple[str, str]:
            return (label, callbacks.admin("f", cid, step.name, choice))

        offered = await forms.choices(step, a, lang, self._timezone)
        rows: list[Row] = [
            tuple(b(label, choice) for label, choice in offered[i : i + 2])
            for i in range(0, len(offered), 2)
        ]
        last = [b(tr(lang, "Cancel"), forms.CANCEL)]
        if step.optional:
            label = tr(lang, REMOVE) if step.optional == forms.CLEAR else tr(lang, SKIP)
            last.insert(0, b(label, step.optional))
        rows.append(tuple(last))
        return Reply("\n".join(lines), tuple(rows), problem)

    async def _current(self, a: dict[str, Any]) -> str:
        if a["form"] == "mailbox":
            ddi = await Ddi.get_or_none(id=a["ddi_id"])
            return ddi.mailbox if ddi else ""
        s = await Subscriber.get_or_none(id=a["subscriber_id"])
        if s is None:
            return ""
        field = a["field"]
        values = {
            "quiet": f"{s.quiet_start}-{s.quiet_end}" if s.quiet_start else "",
            "scenario": s.scenario.value,
            "forward": s.forward_number or "",
        }
        return values.get(field) or str(getattr(s, field, "") or "")

    async def _answer(
        self,
        conversation: Conversation,
        chat_id: int,
        lang: str,
        *,
        choice: str | None = None,
        text: str | None = None,
    ) -> Reply:
        a = conversation.answers
        if choice == forms.CANCEL:
            conversation.done, conversation.step = True, "cancelled"
            await conversation.save(update_fields=["done", "step", "updated_at"])
            said = tr(lang, CANCELLED)
            return Reply(said, self._main(lang).buttons, said)
        step = forms.step_named(a, conversation.step)
        if step is None:
            return Reply(toast=tr(lang, STEP_OVER))
        try:
            await forms.store(
                a,
                step,
                lang,
                text=text,
                choice=choice,
                region=self._region,
                default_tz=self._timezone,
            )
        except Problem as problem:
            return await self._prompt(conversation, lang, str(problem))
        following = forms.next_step(a, step.name)
        conversation.answers = a
        if following is not None:
            conversation.step = following
            await conversation.save(update_fields=["answers", "step", "updated_at"])
            return await self._prompt(conversation, lang)
        await conversation.save(update_fields=["answers", "updated_at"])
        try:
            reply = await self._finish(a, chat_id, lang)
        except Problem as problem:  # e.g. taken meanwhile: the last question again
            a.pop(step.name, None)
            conversation.answers = a
            await conversation.save(update_fields=["answers", "updated_at"])
            return await self._prompt(conversation, lang, str(problem))
        except (admin.AdminError, people.StaffError) as exc:
            return await self._prompt(conversation, lang, tr(lang, CANNOT, reason=str(exc)))
        conversation.done, conversation.step = True, "done"
        await conversation.save(update_fields=["done", "step", "updated_at"])
        return reply

    # -- what a finished form does ---------------------------------------------------------

    async def _finish(self, a: dict[str, Any], chat_id: int, lang: str) -> Reply:
        form = a["form"]
        actor = str(chat_id)
        if form in STAFF_FORMS:
            return await self._finish_staff(a, actor, lang)
        if form == "new_sub":
            created = await admin.add_subscriber(
                name=a["name"],
                ddis=[a["ddi"]],
                language=a["language"],
                timezone=a["timezone"],
                region=self._region,
            )
            s = created.subscriber
            what = f"admin: new subscriber {s.id} ddi {a['ddi']}"
            head = (
                tr(lang, CREATED, name=s.name)
                + "\n"
                + tr(lang, LINK_CODE, name=s.name, code=created.link_code)
            )
        else:
            found = await Subscriber.get_or_none(id=a["subscriber_id"])
            if found is None:
                return Reply(tr(lang, GONE), self._main(lang).buttons, tr(lang, GONE))
            s = found
            what = await self._change(s, a)
            head = tr(lang, SAVED)
        pushed = await self._push(s)
        detail = "" if pushed else "pbx unavailable: written at the next login"
        await audit.record(Channel.TELEGRAM, actor, s, what, audit.DONE, detail)
        if not pushed:
            head += "\n" + tr(lang, PBX_LATER)
        card = await self._card(s.id, lang, "✓ " + head)
        return Reply(card.text, card.buttons, tr(lang, SAVED))

    async def _change(self, s: Subscriber, a: dict[str, Any]) -> str:
        """Apply an edit, a new DDI, a mailbox or a route; what to audit."""
        form = a["form"]
        if form == "ddi":
            try:
                await Ddi.create(number=a["ddi"], mailbox=a.get("mailbox", ""), subscriber=s)
            except IntegrityError as exc:
                raise Problem(tr("en", forms.DDI_USED, number=a["ddi"])) from exc
            return f"admin: add ddi {a['ddi']} mailbox {a.get('mailbox', '')}"
        if form == "mailbox":
            await Ddi.filter(id=a["ddi_id"], subscriber=s).update(mailbox=a["mailbox"])
            return f"admin: mailbox {a['ddi']} = {a['mailbox']}"
        if form == "route":
            channels = [c for c in a["channels"].split(",") if c]
            await admin.set_route(s.id, a["kind"], a["urgency"], channels)
            return f"admin: route {a['kind']} {a['urgency']} = {a['channels']}"
        field, value = a["field"], a[a["field"]]
        if field in ("mobile", "email", "forward", "quiet"):
            key = "quiet_hours" if field == "quiet" else field
            await admin.set_contact_points(s.id, region=self._region, **{key: value})
        elif field == "scenario":
            await Subscriber.filter(id=s.id).update(
                scenario=Scenario(value), scenario_until=None, scenario_after=None
            )
        else:  # name, language, timezone, instructions, greeting (checked by the form)
            await Subscriber.filter(id=s.id).update(**{field: value})
        return f"admin: set {field} = {value}"[:500]

    async def _push(self, s: Subscriber) -> bool:
        """The subscriber's lines to AstDB now; False when the PBX cannot be reached."""
        fresh = await Subscriber.get(id=s.id)
        try:
            await self._push_lines(fresh)
        except PbxUnavailable as exc:
            log.warning("subscriber %s changed; AstDB at the next login (%s)", s.id, exc)
            return False
        return True

    async def _finish_staff(self, a: dict[str, Any], actor: str, lang: str) -> Reply:
        form = a["form"]
        if form == "team":
            team = await people.add_team(a["name"])
            head = tr(lang, TEAM_CREATED, name=team.name)
            what = f"admin: new team {team.id}"
        else:
            role = Role.ADMIN if form == "admin" else Role(a["role"])
            team = a.get("team", "none")
            if role == Role.ADMIN:
                created = await people.add_admin(a["name"], a["language"])
            else:
                created = await people.add_staff(
                    name=a["name"],
                    role=role,
                    team=team[1:] if team.startswith("t") else None,
                    interface=a.get("interface") or None,
                    language=a["language"],
                )
            user: User = created.agent.user
            role_label = tr(lang, forms.ROLE_LABELS.get(role, ADMIN_LABEL))
            head = tr(lang, STAFF_CREATED, name=user.name, role=role_label)
            head += "\n" + tr(lang, LINK_CODE, name=user.name, code=created.link_code)
            what = f"admin: new {role} {created.agent.id}"
        await audit.record(Channel.TELEGRAM, actor, None, what, audit.DONE)
        listing = await self._staff(lang, 0, "✓ " + head)
        return Reply(listing.text, listing.buttons, tr(lang, SAVED))


def _ddi(ddi: Ddi) -> str:
    return f"{ddi.number} ({ddi.mailbox})" if ddi.mailbox else ddi.number
