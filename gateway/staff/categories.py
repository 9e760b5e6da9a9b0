"""The task categories supervisors keep: `/category`, `/category add NAME`, `/category
remove NAME`. Categories are one list for the whole desk; a supervisor (of any team) or
a director keeps it, agents only pick from it."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError

from gateway.staff.identity import staff_of_chat
from gateway.staff.replies import Reply, language, not_staff, refuse
from gateway.staff.rights import Act, Owner, Staff, allowed
from locales import N_, tr
from models.staff import TaskCategory

MAX_NAME = 64
USAGE = N_("Categories: {names}\nTo change them: /category add NAME, /category remove NAME")
NONE_YET = N_("(none yet)")
ADDED = N_("Category added: {name}")
REMOVED = N_("Category removed: {name}")
EXISTS = N_("That category exists already: {name}")
MISSING = N_("There is no category {name}.")
BAD_NAME = N_("A category name is 1 to 64 characters.")
ADD_WORDS = ("add", "+")
REMOVE_WORDS = ("remove", "delete", "-")


def _owner(actor: Staff) -> Owner:
    """The list is everyone's: a supervisor acts on it as the lead of one of their teams."""
    return Owner(team_id=min(actor.leads)) if actor.leads else Owner()


async def keep(chat_id: int, text: str, telegram_lang: str | None = None) -> Reply:
    found = await staff_of_chat(chat_id)
    what = f"/category {text}".strip()[:200]
    if found is None:
        return await not_staff(chat_id, language(None, telegram_lang), what)
    agent, actor = found
    lang = language(agent, telegram_lang)
    verb, _, name = text.strip().partition(" ")
    name = " ".join(name.split())
    if not verb:  # the list: anyone at the desk may read it
        names = await TaskCategory.all().order_by("name").values_list("name", flat=True)
        return Reply(text=tr(lang, USAGE, names=", ".join(map(str, names)) or tr(lang, NONE_YET)))
    if not allowed(actor, Act.KEEP_CATEGORIES, _owner(actor)):
        return await refuse(chat_id, lang, what, why=str(Act.KEEP_CATEGORIES))
    if verb.lower() not in ADD_WORDS + REMOVE_WORDS:
        return await keep(chat_id, "", telegram_lang)
    if not 0 < len(name) <= MAX_NAME:
        return Reply(text=tr(lang, BAD_NAME))
    if verb.lower() in ADD_WORDS:
        try:
            await TaskCategory.create(name=name)
        except IntegrityError:  # unique: two supervisors adding it at once make one
            return Reply(text=tr(lang, EXISTS, name=name))
        return Reply(text=tr(lang, ADDED, name=name))
    removed = await TaskCategory.filter(name=name).delete()
    return Reply(text=tr(lang, REMOVED if removed else MISSING, name=name))
