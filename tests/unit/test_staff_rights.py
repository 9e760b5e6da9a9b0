"""The operator desk's rights: every Act × role × whose the thing is, against a table
written out here by hand (not computed by the logic under test), and a census of every
staff button prefix and bot command the running bot registers, each of which must be
named below with the test that shows a forged or another team's use refused.

The actor is agent 1 of team 10; a supervisor actor leads team 10. Whose:
  own      Owner(agent 1, team 10)        the actor's own card, task, presence
  mate     Owner(agent 2, team 10)        a member of the team (the supervisor leads it)
  other    Owner(agent 3, team 20)        another team's agent
  teamtask Owner(None, team 10)           a task assigned to the actor's whole team
  nobody   Owner()                        held by no agent and no team
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from telegram.ext import CallbackQueryHandler, CommandHandler

from gateway.staff.rights import Act, Owner, Staff, allowed
from models.db import Role
from models.settings import load_settings, with_section

OWNERS = {
    "own": Owner(agent_id=1, team_id=10),
    "mate": Owner(agent_id=2, team_id=10),
    "other": Owner(agent_id=3, team_id=20),
    "teamtask": Owner(agent_id=None, team_id=10),
    "nobody": Owner(),
}
COLUMNS = tuple(OWNERS)  # the order of the letters below
ACTORS = {
    Role.AGENT: Staff(agent_id=1, role=Role.AGENT, team_id=10),
    Role.SUPERVISOR: Staff(agent_id=1, role=Role.SUPERVISOR, team_id=10, leads=frozenset({10})),
    Role.DIRECTOR: Staff(agent_id=1, role=Role.DIRECTOR),
    Role.ADMIN: Staff(agent_id=1, role=Role.ADMIN),
    Role.SUBSCRIBER: Staff(agent_id=1, role=Role.SUBSCRIBER, team_id=10),
}

# Y = allowed, . = refused; columns: own mate other teamtask nobody.
EXPECTED: dict[Role, dict[Act, str]] = {
    Role.AGENT: {
        Act.SIGN_IN: "Y....",
        Act.SIGN_OUT: "Y....",
        Act.PAUSE: "Y....",
        Act.SEE_PRESENCE: "Y....",
        Act.SEE_CARD: "Y....",
        Act.TAKE_MESSAGE: "Y....",
        Act.EDIT_CONTACT: "Y....",
        Act.TRANSFER: "Y....",
        Act.SEE_TASK: "Y..Y.",
        Act.CREATE_TASK: "Y....",
        Act.EDIT_TASK: "Y..Y.",
        Act.PLACE_CALL: "Y..Y.",
        Act.LISTEN: ".....",
        Act.WHISPER: ".....",
        Act.KEEP_CATEGORIES: ".....",
        Act.SEE_CONSOLE: ".....",
        Act.SEE_STATISTICS: ".....",
        Act.MANAGE_SUBSCRIBERS: ".....",
        Act.MANAGE_STAFF: ".....",
    },
    Role.SUPERVISOR: {
        Act.SIGN_IN: "YY.Y.",
        Act.SIGN_OUT: "YY.Y.",
        Act.PAUSE: "YY.Y.",
        Act.SEE_PRESENCE: "YY.Y.",
        Act.SEE_CARD: "YY.Y.",
        Act.TAKE_MESSAGE: "YY.Y.",
        Act.EDIT_CONTACT: "YY.Y.",
        Act.TRANSFER: "YY.Y.",
        Act.SEE_TASK: "YY.Y.",
        Act.CREATE_TASK: "YY.Y.",
        Act.EDIT_TASK: "YY.Y.",
        Act.PLACE_CALL: "YY.Y.",
        Act.LISTEN: "YY.Y.",
        Act.WHISPER: "YY.Y.",
        Act.KEEP_CATEGORIES: "YY.Y.",
        Act.SEE_CONSOLE: ".....",
        Act.SEE_STATISTICS: ".....",
        Act.MANAGE_SUBSCRIBERS: ".....",
        Act.MANAGE_STAFF: ".....",
    },
    Role.DIRECTOR: {
        **dict.fromkeys(Act, "YYYYY"),
        Act.MANAGE_SUBSCRIBERS: ".....",
        Act.MANAGE_STAFF: ".....",
    },
    Role.ADMIN: dict.fromkeys(Act, "YYYYY"),
    Role.SUBSCRIBER: dict.fromkeys(Act, "....."),
}


def test_the_table_covers_every_act_and_role() -> None:
    assert set(EXPECTED) == set(Role)
    for role, rows in EXPECTED.items():
        assert set(rows) == set(Act), role
        assert all(len(row) == len(COLUMNS) and set(row) <= {"Y", "."} for row in rows.values())


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("act", list(Act), ids=str)
def test_rights_matrix(role: Role, act: Act) -> None:
    got = "".join("Y" if allowed(ACTORS[role], act, OWNERS[c]) else "." for c in COLUMNS)
    assert got == EXPECTED[role][act], f"{role} {act}: {dict(zip(COLUMNS, got, strict=True))}"


def test_a_supervisor_acts_only_on_the_teams_they_lead() -> None:
    # A supervisor who is a member of team 10 but leads team 30 has an agent's rights on
    # team 10 and a supervisor's on team 30 only.
    member = Staff(agent_id=1, role=Role.SUPERVISOR, team_id=10, leads=frozenset({30}))
    assert not allowed(member, Act.LISTEN, OWNERS["mate"])
    assert not allowed(member, Act.SEE_CARD, OWNERS["mate"])
    assert allowed(member, Act.SEE_TASK, OWNERS["teamtask"])
    assert allowed(member, Act.WHISPER, Owner(agent_id=9, team_id=30))
    assert not allowed(member, Act.WHISPER, OWNERS["other"])
    # Without a team, an agent's team-wide task is no one's of theirs.
    loner = Staff(agent_id=1, role=Role.AGENT)
    assert not allowed(loner, Act.SEE_TASK, Owner())
    assert not allowed(loner, Act.SEE_TASK, OWNERS["teamtask"])


# -- every staff entry point of the bot, and the test that shows it refusing -----------------

# The subscribers' (bot/handlers.py, the command desk's own rights, tested elsewhere).
SUBSCRIBER_COMMANDS = {"start", "scenario", "status", "diary", "calls", "help"}
SUBSCRIBER_PATTERNS = {"^ack:", "^callback:", "^fwdme:", "^book:", "^bk:", "^scn:"}

# Staff entry point -> the test (module::function) that shows forged data, another team's
# thing or a lower role refused and nothing changed.
COVERED: dict[str, str] = {
    "^cd:[0-9]+:xfer$": (
        "tests.e2e.test_transfer_e2e::test_forged_transfer_data_for_another_teams_call_is_refused"
    ),
    "^xf:": (
        "tests.e2e.test_transfer_e2e::test_forged_transfer_data_for_another_teams_call_is_refused"
    ),
    "/listen": "tests.e2e.test_transfer_e2e::test_supervisor_listens_and_whispers_only_to_own_team",
    "/whisper": (
        "tests.e2e.test_transfer_e2e::test_supervisor_listens_and_whispers_only_to_own_team"
    ),
}
# The other parts of the desk (presence, messages, tasks): their refusal tests.
PRESENCE = "tests.unit.test_presence::test_no_presence_entry_point_reaches_another_teams_agent"
EXCHANGES = (
    "tests.unit.test_conversation::"
    "test_another_teams_card_or_exchange_is_refused_audited_and_unchanged"
)
COVERED.update(
    {
        "^pz:": PRESENCE,
        "/signin": PRESENCE,
        "/signout": PRESENCE,
        "/pause": PRESENCE,
        "/resume": PRESENCE,
        "/online": "tests.unit.test_presence::test_online_shows_what_each_may_see",
        "^cd:[0-9]+:(appt|msg|req|task)$": EXCHANGES,
        "^cv:": EXCHANGES,
        "^tk:": "tests.unit.test_tasks::test_another_teams_task_is_refused_audited_and_unchanged",
        "/task": "tests.unit.test_tasks::test_a_task_by_command_asks_for_the_subscriber_first",
        "/tasks": "tests.unit.test_tasks::test_tasks_lists_mine_with_buttons_and_done_closes",
        "/category": "tests.unit.test_categories::test_an_agent_cannot_change_the_list",
    }
)
# The admins' menus: /admin and every ad: button, forged, from a director and a stranger.
ADMIN_MENUS = (
    "tests.unit.test_admin_menus::test_every_admin_button_is_refused_to_others_and_audited"
)
COVERED.update({"^ad:": ADMIN_MENUS, "/admin": ADMIN_MENUS})
# The console of calls: /console and every cs: button, from an agent and a supervisor.
CONSOLE = "tests.unit.test_console::test_agents_and_supervisors_are_refused_and_audited"
COVERED.update({"^cs:": CONSOLE, "/console": CONSOLE})
# The international calls report (the outbound policy's record): directors and admins.
COVERED["/international"] = (
    "tests.unit.test_policy::"
    "test_the_international_report_is_refused_to_agents_and_strangers_and_audited"
)
# Statistics, the usage CSV and the PDF report: directors and admins.
REPORTS = (
    "tests.unit.test_stats::"
    "test_stats_usage_and_report_are_for_directors_and_admins_only_and_audited"
)
COVERED.update({"/stats": REPORTS, "/usage": REPORTS, "/report": REPORTS})
# Call lists: /campaigns, cl: and ce: buttons from another team's agent.
CAMPAIGNS = "tests.unit.test_campaigns::test_another_team_or_a_closed_window_changes_nothing"
COVERED.update({"/campaigns": CAMPAIGNS, "^cl:": CAMPAIGNS, "^ce:": CAMPAIGNS})
OTHERS: set[str] = set()  # every staff entry point has its refusal test named above


def _registered() -> tuple[set[str], set[str]]:
    """The callback patterns and commands the real bot registers (bot/runtime.py)."""
    from bot.runtime import Runtime

    s = load_settings(None, environ={})
    s = with_section(s, "telegram", token="1:census", base_url="http://127.0.0.1:9/bot")
    runtime = Runtime(s)
    patterns: set[str] = set()
    commands: set[str] = set()
    for handlers in runtime.application.handlers.values():
        for handler in handlers:
            if isinstance(handler, CallbackQueryHandler) and handler.pattern is not None:
                pattern: Any = handler.pattern
                patterns.add(pattern.pattern if hasattr(pattern, "pattern") else str(pattern))
            elif isinstance(handler, CommandHandler):
                commands |= set(handler.commands)
    return patterns, {f"/{c}" for c in commands}


def test_every_staff_button_and_command_is_accounted_for() -> None:
    patterns, commands = _registered()
    staff = (patterns - SUBSCRIBER_PATTERNS) | (commands - {f"/{c}" for c in SUBSCRIBER_COMMANDS})
    unlisted = staff - set(COVERED) - OTHERS
    assert unlisted == set(), f"staff entry points with no refusal test named: {unlisted}"
    assert set(COVERED) <= staff, "a covered entry point is no longer registered"
    for target in COVERED.values():
        module, _, function = target.partition("::")
        assert callable(getattr(importlib.import_module(module), function)), target
