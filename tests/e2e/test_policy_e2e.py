"""The outbound policy through the running service: a subscriber's "callback" to a premium
or an unpermitted international number (typed, or the missed call's button) is refused in
their language and audited, nothing reaches the PBX; once the operator permits
international calls (`frontdesk subscriber outbound`), the same call is placed (Originate
at the sandbox AMI) and listed by `/international` and `frontdesk international`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from models.db import AuditEntry, Role, Subscriber, User
from models.staff import Agent
from sandbox.telegram_api import Call
from tests.e2e.test_end_to_end import CHAT, DDI, WAIT, Stack, _tap
from tests.e2e.test_end_to_end import stack as stack  # the fixture
from tests.stack import environment, run_main

PREMIUM = "+309011234567"
ABROAD = "+447400123456"
ADMIN_CHAT = 6060
PREMIUM_NO = "Οι κλήσεις προς αριθμούς υπερτιμημένης χρέωσης δεν επιτρέπονται για αυτή τη γραμμή."
ABROAD_NO = "Οι διεθνείς κλήσεις χρειάζονται την άδεια του παρόχου."


def reply_to(chat: int, words: str) -> object:
    def match(call: Call) -> bool:
        return (
            call.method == "sendMessage"
            and str(call.params.get("chat_id")) == str(chat)
            and words in str(call.params.get("text", ""))
        )

    return match


async def say(stack: Stack, chat: int, text: str, expect: str) -> str:
    stack.bot.inject_message(chat, text, language_code="el")
    sent = await stack.bot.wait_for(reply_to(chat, expect), timeout=WAIT)  # type: ignore[arg-type]
    return str(sent.params["text"])


def originates(stack: Stack) -> list[dict[str, str]]:
    return [a for a in stack.ami.actions if a.get("Action") == "Originate"]


async def test_refused_then_permitted_and_reported(stack: Stack, tmp_path: Path) -> None:
    assert await say(stack, CHAT, f"callback {PREMIUM}", PREMIUM_NO) == PREMIUM_NO
    assert await say(stack, CHAT, f"callback {ABROAD}", ABROAD_NO) == ABROAD_NO

    # The missed call's "Call back" button: the same policy, the same answer.
    frames = stack.calls.missed(ddi=DDI, caller_num=ABROAD, caller_name="John")
    await stack.play_and_route(frames, chunk=[64])
    sent = await stack.bot.wait_for(
        lambda c: c.method == "sendMessage" and "reply_markup" in c.params, timeout=WAIT
    )
    call_back = sent.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert await _tap(stack, call_back, sent.result["message_id"]) == ABROAD_NO

    assert originates(stack) == []
    refused = await AuditEntry.filter(result="refused").order_by("id")
    assert [(r.channel, r.detail) for r in refused] == [
        ("telegram", "premium"),
        ("telegram", "international"),
        ("telegram", "international"),
    ]
    assert refused[0].command == f"callback {PREMIUM}" and refused[2].command == call_back

    # The operator permits international calls for this subscriber, from the CLI.
    subscriber = await Subscriber.get()
    env = environment(FRONTDESK__DATABASE__URL=stack.runtime.settings.database.url)
    out = await run_main(
        "subscriber",
        "outbound",
        str(subscriber.id),
        "--allow",
        "national,mobile,international",
        env=env,
    )
    assert out.strip() == f"{subscriber.id}\toutbound=national,mobile,international"

    placed = await say(stack, CHAT, f"callback {ABROAD}", "Καλούμε τώρα")
    assert ABROAD in placed
    originate = await stack.ami.wait_action("Originate", timeout=WAIT)
    assert originate["Exten"] == ABROAD
    assert originate["Channel"] == "Local/+306944000001@frontdesk-callback"
    assert await say(stack, CHAT, f"callback {PREMIUM}", PREMIUM_NO) == PREMIUM_NO
    assert len(originates(stack)) == 1

    # The admins' report lists it: in the bot, and on the command line.
    user = await User.create(name="Admin", role=Role.ADMIN, telegram_chat_id=ADMIN_CHAT)
    await Agent.create(user=user)
    month = datetime.now(UTC).strftime("%Y-%m")
    report = await say(stack, ADMIN_CHAT, "/international", ABROAD)
    lines = report.splitlines()
    assert lines[0] == f"Διεθνείς κλήσεις τον {month}: 1"
    assert lines[1].endswith(f"Ιατρείο Παπαδόπουλου {ABROAD} GB (επανάκληση)")
    assert await say(stack, ADMIN_CHAT, "/international 2001-01", "2001-01") == (
        "Καμία διεθνής κλήση τον 2001-01."
    )
    # The subscriber's own chat is no desk: it learns nothing.
    await say(stack, CHAT, "/international", "δεν είναι συνδεδεμένη")
    cli = await run_main("international", "--month", month, env=env)
    assert f"Ιατρείο Παπαδόπουλου {ABROAD} GB (call back)" in cli
    assert cli.strip().endswith(f"1 international call(s) in {month}")
