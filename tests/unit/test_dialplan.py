"""Static checks of the Asterisk dialplan include, deploy/asterisk/extensions_frontdesk.conf.

Asterisk cannot be installed where the tests run, so this module carries a small parser of
the extensions.conf format ([context] headers, ``exten =>``, ``same =>``, ``include =>``,
``#include``, ``;`` comments, ``n(label)`` priorities) and checks what a reload and a few
calls would otherwise show: every jump lands on an extension and priority that exist, the
UserEvents carry exactly the fields the gateway parses, AstDB is read only under family
``frontdesk`` with the documented keys and only through FILTER(), only stock applications
and functions are used, and deploy/asterisk/README.md documents all of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASTERISK_DIR = ROOT / "deploy" / "asterisk"
CONF = ASTERISK_DIR / "extensions_frontdesk.conf"
README = ASTERISK_DIR / "README.md"
CAPTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"

# --- the interface the gateway depends on ------------------------------------------------

EXPECTED_EVENTS: dict[str, tuple[str, ...]] = {
    "FrontdeskCall": ("DDI", "Scenario", "Mailbox", "ForwardTo", "RingTime", "Linkedid"),
    "FrontdeskFallback": ("DDI", "DialStatus", "Mailbox", "Linkedid"),
    "FrontdeskCallEnd": (
        "DDI",
        "Scenario",
        "DialStatus",
        "VMStatus",
        "Answered",
        "AnsweredBy",
        "Linkedid",
    ),
}
# Fields added since the captures were recorded (they stay interface: extended, not renamed).
ADDED_FIELDS: dict[str, tuple[str, ...]] = {"FrontdeskCallEnd": ("Answered", "AnsweredBy")}
FIELD_VALUES: dict[str, str] = {
    "DDI": "${DDI}",
    "Scenario": "${SCENARIO}",
    "Mailbox": "${MAILBOX}",
    "ForwardTo": "${FWD}",
    "RingTime": "${FD_RINGTIME}",
    "DialStatus": "${FD_DIALSTATUS}",
    "Answered": "${FD_ANSWERED}",
    "AnsweredBy": "${FD_BY}",
    "VMStatus": "${VMSTATUS}",
    "Linkedid": "${CHANNEL(linkedid)}",
}
ASTDB_FAMILY = "frontdesk"
ASTDB_KEYS = frozenset({"scenario", "forward", "mailbox", "ringtime", "fallback"})
SCENARIOS = ("agent", "voicemail", "forward", "closed")
DEFAULT_SCENARIO = "agent"
INBOUND = "frontdesk-inbound"
CALLBACK = "frontdesk-callback"
MOVED = "frontdesk-moved"  # where "Forward calls to me" Redirects a waiting caller
TRANSFER = "frontdesk-transfer"  # where an agent puts an answered caller through
HANGUP = "frontdesk-hangup"
# Variables Dial() (and app_queue, app_voicemail) write on the caller's channel: a name of
# ours among them would be overwritten by the first Dial.
WRITTEN_BY_DIAL = frozenset(
    f"{name}{suffix}"
    for name in ("RINGTIME", "PROGRESSTIME", "ANSWEREDTIME", "DIALEDTIME")
    for suffix in ("", "_MS")
)
GLOBAL_DEFAULTS = {
    "FRONTDESK_QUEUE": "frontdesk-agents",
    "FRONTDESK_TRUNK": "PJSIP/{NUMBER}@pstn",
    "FRONTDESK_CLOSED_SOUND": "frontdesk-closed",
    "FRONTDESK_URGENT_SOUND": "frontdesk-urgent",
    "FRONTDESK_EXTENSIONS": "from-internal",
}
SAMPLE_DDIS = ("2100001", "+302100001")

# Stock applications (app_dial, app_queue, app_voicemail, app_playback, app_stack, app_exec,
# app_userevent and the pbx core) and stock dialplan functions.
ALLOWED_APPS = frozenset(
    "Answer NoOp Set Dial Queue VoiceMail Playback GotoIf Goto Gosub GosubIf Return UserEvent"
    " Hangup ExecIf Wait Progress Ringing".split()
)
ALLOWED_FUNCTIONS = frozenset(
    {"FILTER", "DB", "TOLOWER", "CUT", "LEN", "CHANNEL", "IF", "STRREPLACE", "LOCAL"}
)
# Values an outsider can influence: AstDB content, the dialled extension, Gosub arguments,
# caller-supplied headers. They must pass through FILTER() before reaching these apps.
TAINTED_FUNCTIONS = frozenset({"DB", "CALLERID", "CONNECTEDLINE", "PJSIP_HEADER", "SIP_HEADER"})
TAINTED_VARIABLE = re.compile(r"EXTEN|ARG\d+")
SINKS = frozenset({"Dial", "Queue", "VoiceMail", "Playback", "UserEvent"})
# Functions whose first argument is a variable *name*, read without ${...}.
BY_NAME_FUNCTIONS = frozenset({"STRREPLACE", "CUT"})

# --- a small parser of the extensions.conf format ----------------------------------------

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}


class DialplanError(ValueError):
    """The text is not a dialplan this parser (and Asterisk) would accept."""


@dataclass
class Step:
    """One priority of an extension: ``exten => pattern,priority(label),App(data)``."""

    context: str
    exten: str
    priority: int
    label: str | None
    app: str
    data: str
    line: int


@dataclass
class Extension:
    pattern: str
    steps: list[Step] = field(default_factory=list)

    def labels(self) -> dict[str, int]:
        return {s.label: s.priority for s in self.steps if s.label}

    def step_at(self, priority: int) -> Step | None:
        return next((s for s in self.steps if s.priority == priority), None)


@dataclass
class Context:
    name: str
    extensions: dict[str, Extension] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class Dialplan:
    contexts: dict[str, Context] = field(default_factory=dict)
    file_includes: list[str] = field(default_factory=list)

    def steps(self) -> Iterator[Step]:
        for context in self.contexts.values():
            for extension in context.extensions.values():
                yield from extension.steps

    def find_extension(self, context: str, exten: str) -> Extension | None:
        """The extension of ``context`` that a call to ``exten`` runs (exact name first)."""
        ctx = self.contexts.get(context)
        if ctx is None:
            return None
        if exten in ctx.extensions:
            return ctx.extensions[exten]
        return next(
            (e for p, e in ctx.extensions.items() if p.startswith("_") and matches(p, exten)),
            None,
        )


def strip_comment(line: str) -> str:
    """Drop a ``;`` comment; ``\\;`` is a literal semicolon."""
    out: list[str] = []
    escaped = False
    for ch in line:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == ";":
            break
        else:
            out.append(ch)
    return "".join(out).strip()


def split_top(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on ``sep`` outside (), [] and {} - as Asterisk separates application arguments."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0 and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def bracket_error(text: str) -> str | None:
    """Why the (), [] and {} of ``text`` do not nest, or None if they do."""
    stack: list[str] = []
    for i, ch in enumerate(text):
        if ch in _OPEN:
            stack.append(ch)
        elif ch in _CLOSE:
            if not stack or stack[-1] != _CLOSE[ch]:
                return f"unexpected {ch!r} at column {i + 1}"
            stack.pop()
    return f"unclosed {stack[-1]!r}" if stack else None


_APP = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*", re.DOTALL)
_PRIORITY = re.compile(r"(n|next|s|same|\d+)(?:\+(\d+))?(?:\(([^()]*)\))?")
_HEADER = re.compile(r"\[([^\]]+)\](?:\(([^)]*)\))?")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)\s*=>?\s*(.*)")


def parse_app(text: str) -> tuple[str, str]:
    """``App(data)`` -> (App, data); the data runs to the last closing parenthesis."""
    m = _APP.fullmatch(text)
    if m is None:
        raise DialplanError(f"not an application call: {text!r}")
    return m.group(1), m.group(2) or ""


def parse_dialplan(text: str) -> Dialplan:
    plan = Dialplan()
    context: Context | None = None
    last_exten: str | None = None
    last_priority: int | None = None  # like pbx_config: none yet in this context
    for number, raw in enumerate(text.splitlines(), start=1):
        line = strip_comment(raw)
        if not line:
            continue
        if line.startswith("#"):
            directive, _, argument = line.partition(" ")
            if directive != "#include":
                raise DialplanError(f"line {number}: {directive} is not allowed")
            plan.file_includes.append(argument.strip().strip('"'))
            continue
        header = _HEADER.fullmatch(line)
        if header:
            name = header.group(1).strip()
            context = plan.contexts.setdefault(name, Context(name))
            last_exten, last_priority = None, None
            continue
        assign = _ASSIGN.fullmatch(line)
        if assign is None or context is None:
            raise DialplanError(f"line {number}: cannot parse {raw!r}")
        key, value = assign.group(1).lower(), assign.group(2)
        if context.name in ("general", "globals"):
            context.variables[assign.group(1)] = value
            continue
        if key == "include":
            context.includes.append(value.strip())
            continue
        if key == "exten":
            pattern, priority, app = (p.strip() for p in _split3(value, number))
        elif key == "same":
            if last_exten is None:
                raise DialplanError(f"line {number}: 'same' without a previous exten")
            pattern = last_exten
            priority, _, app = (p.strip() for p in value.partition(","))
        else:
            raise DialplanError(f"line {number}: unknown directive {key!r}")
        prio = _PRIORITY.fullmatch(priority)
        if prio is None:
            raise DialplanError(f"line {number}: bad priority {priority!r}")
        base, plus, label = prio.groups()
        if base in ("n", "next", "s", "same") and last_priority is None:
            raise DialplanError(f"line {number}: {base!r} on the first entry of a context")
        if last_priority is None:
            value_priority = int(base)
        elif base in ("n", "next"):
            value_priority = last_priority + 1
        elif base in ("s", "same"):
            value_priority = last_priority
        else:
            value_priority = int(base)
        value_priority += int(plus or 0)
        if value_priority < 1:
            raise DialplanError(f"line {number}: priority {priority!r} before the first")
        app_name, data = parse_app(app)
        extension = context.extensions.setdefault(pattern, Extension(pattern))
        extension.steps.append(
            Step(context.name, pattern, value_priority, label, app_name, data, number)
        )
        last_exten, last_priority = pattern, value_priority
    return plan


def _split3(value: str, number: int) -> list[str]:
    parts = split_top(value, ",", maxsplit=2)
    if len(parts) != 3:
        raise DialplanError(f"line {number}: exten needs pattern,priority,application")
    return parts


def _pattern_class(body: str) -> str:
    chars: set[str] = set()
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            chars.update(chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


def matches(pattern: str, exten: str) -> bool:
    """Asterisk extension pattern matching: _ X Z N [...] . !"""
    if not pattern.startswith("_"):
        return pattern == exten
    regex: list[str] = []
    i = 1
    while i < len(pattern):
        ch = pattern[i]
        if ch in "Xx":
            regex.append("[0-9]")
        elif ch in "Zz":
            regex.append("[1-9]")
        elif ch in "Nn":
            regex.append("[2-9]")
        elif ch == "[":
            end = pattern.index("]", i)
            regex.append(_pattern_class(pattern[i + 1 : end]))
            i = end
        elif ch == ".":
            regex.append(".+")
        elif ch == "!":
            regex.append(".*")
        else:
            regex.append(re.escape(ch))
        i += 1
    return re.fullmatch("".join(regex), exten) is not None


# --- what the steps do --------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A parenthesised call inside application data: a function or a nested application."""

    name: str  # "" when the parenthesis follows no identifier
    args: str
    start: int
    end: int
    ancestors: tuple[str, ...]


_IDENT_TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?=[:}])")


def calls(text: str) -> list[Call]:
    stack: list[tuple[str, int]] = []
    found: list[Call] = []
    for i, ch in enumerate(text):
        if ch == "(":
            m = _IDENT_TAIL.search(text, 0, i)
            stack.append((m.group(0) if m else "", i))
        elif ch == ")" and stack:
            name, start = stack.pop()
            ancestors = tuple(n for n, _ in stack)
            found.append(Call(name, text[start + 1 : i], start, i, ancestors))
    return found


def expanded(step: Step) -> Iterator[tuple[str, str]]:
    """(app, data) of a step, and of the applications an ExecIf would run."""
    yield step.app, step.data
    if step.app == "ExecIf":
        _, branches = conditional(step.data)
        for branch in branches:
            if branch:
                yield parse_app(branch)


def conditional(data: str) -> tuple[str, list[str]]:
    """``cond?true[:false]`` (GotoIf, GosubIf, ExecIf) -> (cond, [true, false])."""
    parts = split_top(data, "?", maxsplit=1)
    if len(parts) != 2:
        raise DialplanError(f"no '?' in {data!r}")
    return parts[0], [b.strip() for b in split_top(parts[1], ":", maxsplit=1)]


def assignment(data: str) -> tuple[str, str]:
    """``Set(NAME=value)`` -> (NAME, value); ``LOCAL(NAME)`` counts as NAME."""
    name, _, value = data.partition("=")
    local = re.fullmatch(r"LOCAL\((\w+)\)", name.strip())
    return (local.group(1) if local else name.strip()), value


def assignments(plan: Dialplan) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for step in plan.steps():
        for app, data in expanded(step):
            if app == "Set":
                name, value = assignment(data)
                found.setdefault(name, []).append(value)
    return found


Kind = Literal["goto", "gosub"]


@dataclass(frozen=True)
class Jump:
    step: Step
    kind: Kind
    context: str
    exten: str
    priority: str


def jump(step: Step, spec: str, kind: Kind) -> Jump:
    """``[[context,]exten,]priority[(args)]`` relative to ``step``."""
    parts = [p.strip() for p in split_top(spec, ",")]
    priority = re.sub(r"\(.*\)$", "", parts[-1], flags=re.DOTALL)
    if len(parts) == 1:
        return Jump(step, kind, step.context, step.exten, priority)
    if len(parts) == 2:
        return Jump(step, kind, step.context, parts[0], priority)
    if len(parts) == 3:
        return Jump(step, kind, parts[0], parts[1], priority)
    raise DialplanError(f"line {step.line}: bad jump {spec!r}")


def jumps(plan: Dialplan) -> list[Jump]:
    found: list[Jump] = []
    for step in plan.steps():
        for app, data in expanded(step):
            if app == "Goto":
                found.append(jump(step, data, "goto"))
            elif app == "Gosub":
                found.append(jump(step, data, "gosub"))
            elif app in ("GotoIf", "GosubIf"):
                kind: Kind = "goto" if app == "GotoIf" else "gosub"
                for branch in conditional(data)[1]:
                    if branch:
                        found.append(jump(step, branch, kind))
            elif app == "Set":
                name, value = data.split("=", 1) if "=" in data else (data, "")
                if name.strip().upper() == "CHANNEL(HANGUP_HANDLER_PUSH)":
                    found.append(jump(step, value, "gosub"))
    return found


def concrete_extens(j: Jump) -> list[str]:
    """The extensions a jump can name: ${EXTEN} is each sample DDI the caller matches;
    ${DDI} (the filtered DID) is each sample DDI."""
    if j.exten == "${DDI}":
        return list(SAMPLE_DDIS)
    if "${EXTEN}" in j.exten:
        here = [d for d in SAMPLE_DDIS if matches(j.step.exten, d)]
        return [j.exten.replace("${EXTEN}", d) for d in here]
    if "$" in j.exten:
        raise DialplanError(f"line {j.step.line}: cannot resolve {j.exten!r} statically")
    return [j.exten]


def unsafe(text: str, clean: set[str], assigned: set[str]) -> list[str]:
    """Outside-influenced values in ``text`` that no FILTER() cleaned."""
    found: list[str] = []
    all_calls = calls(text)
    for c in all_calls:
        if c.name in TAINTED_FUNCTIONS and "FILTER" not in c.ancestors:
            found.append(f"{c.name}({c.args})")
        if c.name in BY_NAME_FUNCTIONS and "FILTER" not in c.ancestors:
            var = split_top(c.args, ",")[0].strip()
            if var in assigned and var not in clean:
                found.append(var)
    for m in _VARIABLE.finditer(text):
        name = m.group(1)
        if "FILTER" in [c.name for c in all_calls if c.start < m.start() < c.end]:
            continue
        if TAINTED_VARIABLE.fullmatch(name) or (name in assigned and name not in clean):
            found.append(name)
    return found


def clean_variables(plan: Dialplan) -> set[str]:
    """Variables whose every assignment is free of unfiltered outside values (a fixpoint)."""
    values = assignments(plan)
    assigned = set(values)
    clean = set(values)
    changed = True
    while changed:
        changed = False
        for name in sorted(clean):
            if any(unsafe(v, clean, assigned) for v in values[name]):
                clean.discard(name)
                changed = True
    return clean


def user_events(plan: Dialplan) -> list[tuple[Step, str, list[tuple[str, str]]]]:
    found: list[tuple[Step, str, list[tuple[str, str]]]] = []
    for step in plan.steps():
        for app, data in expanded(step):
            if app == "UserEvent":
                name, *body = split_top(data, ",")
                fields = [tuple(p.strip() for p in f.split(":", 1)) for f in body]
                found.append((step, name.strip(), [(f[0], f[1]) for f in fields]))
    return found


DB_KEY = re.compile(r"([^/]+)/([^/]+)/(.+)")


def _is_write(app: str, data: str, c: Call) -> bool:
    """`Set(DB(family/key)=value)`: the DB() on the left of a Set writes."""
    # start and end are the positions of the call's parentheses
    return app == "Set" and c.start == len(c.name) and data[c.end + 1 :].startswith("=")


def astdb_reads(plan: Dialplan) -> list[tuple[Step, Call]]:
    return [
        (step, c)
        for step in plan.steps()
        for app, data in expanded(step)
        for c in calls(data)
        if c.name == "DB" and not _is_write(app, data, c)
    ]


def astdb_writes(plan: Dialplan) -> list[tuple[Step, Call, str]]:
    """(step, the DB() call, the value written)."""
    return [
        (step, c, data[c.end + 2 :])
        for step in plan.steps()
        for app, data in expanded(step)
        for c in calls(data)
        if c.name == "DB" and _is_write(app, data, c)
    ]


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conf_text() -> str:
    return CONF.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def plan(conf_text: str) -> Dialplan:
    return parse_dialplan(conf_text)


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


# --- the parser itself --------------------------------------------------------------------

SAMPLE = r"""
[general]
static=yes
#include "extensions_frontdesk.conf"
[globals]
FRONTDESK_QUEUE=reception ; a comment
[from-trunk]
include => frontdesk-inbound
exten => _X.,1,NoOp(semi\;colon)   ; comment
 same => n(again),Goto(frontdesk-inbound,${EXTEN},1)
exten => 100,1,GotoIf($[1 = 1]?again:2)
exten => 100,2,Hangup()
"""


def test_parser_reads_the_extensions_conf_format() -> None:
    plan = parse_dialplan(SAMPLE)
    assert plan.file_includes == ["extensions_frontdesk.conf"]
    assert plan.contexts["globals"].variables == {"FRONTDESK_QUEUE": "reception"}
    trunk = plan.contexts["from-trunk"]
    assert trunk.includes == ["frontdesk-inbound"]
    steps = trunk.extensions["_X."].steps
    assert [(s.priority, s.label, s.app) for s in steps] == [
        (1, None, "NoOp"),
        (2, "again", "Goto"),
    ]
    assert steps[0].data == r"semi\;colon"
    assert [s.priority for s in trunk.extensions["100"].steps] == [1, 2]
    assert matches("_[+0-9].", "+302100001") and matches("_X.", "2100001")
    assert not matches("_X.", "+302100001") and not matches("_[+0-9].", "h")


def test_parser_rejects_what_asterisk_would_reject() -> None:
    with pytest.raises(DialplanError):
        parse_dialplan("[c]\n same => n,NoOp()\n")
    with pytest.raises(DialplanError):
        parse_dialplan("[c]\nexten => s,n,NoOp()\n")
    with pytest.raises(DialplanError):
        parse_dialplan("#exec /bin/true\n")


def test_taint_check_catches_an_unfiltered_astdb_value() -> None:
    bad = parse_dialplan(
        "[c]\nexten => s,1,Set(N=${DB(frontdesk/forward/1)})\n same => n,Dial(PJSIP/${N})\n"
    )
    good = parse_dialplan(
        "[c]\nexten => s,1,Set(N=${FILTER(0-9+,${DB(frontdesk/forward/1)})})\n"
        " same => n,Dial(PJSIP/${N})\n"
    )
    for plan, expected in ((bad, ["N"]), (good, [])):
        values = assignments(plan)
        clean = clean_variables(plan)
        dial = next(s for s in plan.steps() if s.app == "Dial")
        assert unsafe(dial.data, clean, set(values)) == expected


# --- the include: syntax --------------------------------------------------------------------


def test_every_line_has_balanced_brackets(conf_text: str) -> None:
    errors = []
    for number, raw in enumerate(conf_text.splitlines(), start=1):
        problem = bracket_error(strip_comment(raw))
        if problem:
            errors.append(f"line {number}: {problem}: {raw.strip()}")
    assert errors == []


def test_include_parses_and_has_the_documented_contexts(plan: Dialplan) -> None:
    expected = {
        INBOUND,
        CALLBACK,
        MOVED,
        TRANSFER,
        "frontdesk-hangup",
        "frontdesk-dialstring",
        *(f"frontdesk-{s}" for s in SCENARIOS),
    }
    assert set(plan.contexts) == expected
    assert plan.file_includes == []


def test_include_defines_no_general_or_globals(plan: Dialplan) -> None:
    # A [general] would override the operator's; a second [globals] would be ignored.
    assert not {"general", "globals"} & set(plan.contexts)


def test_priorities_run_from_one_without_gaps_and_labels_are_unique(plan: Dialplan) -> None:
    for context in plan.contexts.values():
        for ext in context.extensions.values():
            numbers = [s.priority for s in ext.steps]
            assert numbers == list(range(1, len(numbers) + 1)), (context.name, ext.pattern)
            labels = [s.label for s in ext.steps if s.label]
            assert len(labels) == len(set(labels)), (context.name, ext.pattern)


def test_only_stock_applications_are_used(plan: Dialplan) -> None:
    used = {app for step in plan.steps() for app, _ in expanded(step)}
    assert used <= ALLOWED_APPS, used - ALLOWED_APPS


def test_only_stock_functions_are_used(plan: Dialplan) -> None:
    used: set[str] = set()
    for step in plan.steps():
        for app, data in expanded(step):
            if app == "ExecIf":
                data = conditional(data)[0]  # the branches are expanded on their own
            if app == "Dial":  # its options, e.g. A(sound), are letters, not functions
                data = ",".join(split_top(data, ",")[:2])
            used |= {c.name for c in calls(data) if c.name}
    assert used <= ALLOWED_FUNCTIONS, used - ALLOWED_FUNCTIONS


def test_no_extension_falls_off_its_end(plan: Dialplan) -> None:
    for context in plan.contexts.values():
        for ext in context.extensions.values():
            assert ext.steps[-1].app in ("Hangup", "Return", "Goto"), (context.name, ext.pattern)


# --- the include: jumps ---------------------------------------------------------------------


def test_every_jump_lands_on_an_existing_extension_and_priority(plan: Dialplan) -> None:
    all_jumps = jumps(plan)
    assert all_jumps
    for j in all_jumps:
        assert j.context in plan.contexts, f"line {j.step.line}: no context {j.context}"
        extens = concrete_extens(j)
        assert extens, f"line {j.step.line}: {j.exten} matches no sample DDI"
        for exten in extens:
            target = plan.find_extension(j.context, exten)
            assert target is not None, f"line {j.step.line}: no {exten}@{j.context}"
            if j.priority.isdigit():
                assert target.step_at(int(j.priority)), f"line {j.step.line}: {j}"
            else:
                assert j.priority in target.labels(), f"line {j.step.line}: no label {j}"


def test_subroutines_return_and_are_only_reached_by_gosub(plan: Dialplan) -> None:
    all_jumps = jumps(plan)
    gosub_contexts = {j.context for j in all_jumps if j.kind == "gosub"}
    goto_contexts = {j.context for j in all_jumps if j.kind == "goto"}
    foreign = {j.context for j in all_jumps if j.kind == "goto" and j.context != j.step.context}
    assert gosub_contexts == set(plan.contexts) - {INBOUND, CALLBACK, MOVED, TRANSFER}
    assert goto_contexts <= gosub_contexts | {INBOUND, MOVED, TRANSFER}
    assert foreign <= {INBOUND}, "a Goto into a subroutine would break its Return"
    for name in gosub_contexts:
        for ext in plan.contexts[name].extensions.values():
            assert ext.steps[-1].app == "Return", (name, ext.pattern)
            assert not any(s.app == "Hangup" for s in ext.steps), (name, ext.pattern)


def test_entry_points_take_plain_and_plus_numbers(plan: Dialplan) -> None:
    for name in (INBOUND, CALLBACK, MOVED, *(f"frontdesk-{s}" for s in SCENARIOS)):
        for ddi in (*SAMPLE_DDIS, "+447700900123"):
            assert plan.find_extension(name, ddi), (name, ddi)
        for special in ("h", "s", "i", "t"):
            assert plan.find_extension(name, special) is None, (name, special)


# --- the include: scenarios ------------------------------------------------------------------


def _gosub_context(step: Step) -> str:
    return jump(step, step.data, "gosub").context


def test_every_scenario_has_a_branch_and_unknown_means_agent(plan: Dialplan) -> None:
    inbound = plan.find_extension(INBOUND, SAMPLE_DDIS[0])
    assert inbound is not None
    branches: dict[str, str] = {}
    for step in inbound.steps:
        if step.app != "GotoIf":
            continue
        cond, (target, *_) = conditional(step.data)
        m = re.fullmatch(r'\$\["\$\{SCENARIO\}" = "(\w+)"\]', cond)
        assert m, step.data
        landing = inbound.step_at(inbound.labels()[target])
        assert landing is not None and landing.app == "Gosub"
        branches[m.group(1)] = _gosub_context(landing)
    last_test = max(s.priority for s in inbound.steps if s.app == "GotoIf")
    fallthrough = inbound.step_at(last_test + 1)
    assert fallthrough is not None and fallthrough.app == "Gosub"
    branches[DEFAULT_SCENARIO] = _gosub_context(fallthrough)
    assert branches == {s: f"frontdesk-{s}" for s in SCENARIOS}

    normalise = [s for s in inbound.steps if s.app == "ExecIf" and "Set(SCENARIO=agent)" in s.data]
    assert len(normalise) == 1
    cond = conditional(normalise[0].data)[0]
    for other in set(SCENARIOS) - {DEFAULT_SCENARIO}:
        assert f'"${{SCENARIO}}" != "{other}"' in cond


def test_agent_scenario_queues_for_the_ring_time_then_voicemail(plan: Dialplan) -> None:
    agent = plan.find_extension("frontdesk-agent", SAMPLE_DDIS[0])
    assert agent is not None
    queue = [s for s in agent.steps if s.app == "Queue"]
    assert len(queue) == 1
    args = split_top(queue[0].data, ",")
    assert args[0] == "${FD_QUEUE}" and args[4] == "${FD_RINGTIME}"
    assert "r" in args[1]
    assert "c" not in args[1], "with c an answered call would come back and reach voicemail"
    apps = [s.app for s in agent.steps]
    assert apps.index("Ringing") < apps.index("Queue") < apps.index("UserEvent")
    assert _gosub_context(agent.steps[-2]) == "frontdesk-voicemail"


def test_forward_scenario_falls_back_to_agents_or_voicemail(plan: Dialplan) -> None:
    fwd = plan.find_extension("frontdesk-forward", SAMPLE_DDIS[0])
    assert fwd is not None
    dial = [s for s in fwd.steps if s.app == "Dial"]
    assert len(dial) == 1 and split_top(dial[0].data, ",") == ["${FD_DIAL}", "${FD_RINGTIME}"]
    labels = fwd.labels()
    fallback = fwd.step_at(labels["fallback"])
    assert fallback is not None and fallback.app == "UserEvent"
    assert fallback.data.startswith("FrontdeskFallback,")
    empty = next(s for s in fwd.steps if s.app == "GotoIf" and "${FWD}" in s.data)
    assert conditional(empty.data)[1][0] == "fallback", "no number: fall back at once"
    gosubs = {_gosub_context(s) for s in fwd.steps if s.app == "Gosub"}
    assert gosubs == {"frontdesk-dialstring", "frontdesk-agent", "frontdesk-voicemail"}
    reads = {c.args for s, c in astdb_reads(plan) if s.context == "frontdesk-forward"}
    assert reads == {"frontdesk/fallback/${DDI}"}


def test_voicemail_and_closed_scenarios(plan: Dialplan) -> None:
    vm = plan.find_extension("frontdesk-voicemail", SAMPLE_DDIS[0])
    closed = plan.find_extension("frontdesk-closed", SAMPLE_DDIS[0])
    assert vm is not None and closed is not None
    assert [s.data for s in vm.steps if s.app == "VoiceMail"] == ["${MAILBOX},u"]
    apps = [s.app for s in closed.steps]
    assert apps.index("Playback") < apps.index("VoiceMail")
    assert {s.data for s in closed.steps if s.app == "VoiceMail"} == {
        "${MAILBOX},s",
        "${MAILBOX},u",
    }


def test_operator_globals_have_defaults_applied_at_call_time(plan: Dialplan) -> None:
    values = assignments(plan)
    for name, default in GLOBAL_DEFAULTS.items():
        overrides = [
            s for s in plan.steps() if s.app == "ExecIf" and f"${{LEN(${{{name}}})}} > 0" in s.data
        ]
        assert len(overrides) == 1, name
        local, _ = assignment(parse_app(conditional(overrides[0].data)[1][0])[1])
        assert values[local] == [default, f"${{{name}}}"], name


def test_caller_id_is_never_changed(plan: Dialplan) -> None:
    for step in plan.steps():
        for app, data in expanded(step):
            if app == "Set":
                target = data.partition("=")[0].upper()
                assert not target.startswith(("CALLERID", "CONNECTEDLINE")), step.line


def test_callback_dials_the_number_through_the_trunk(plan: Dialplan) -> None:
    cb = plan.find_extension(CALLBACK, "+447700900123")
    assert cb is not None
    assert [_gosub_context(s) for s in cb.steps if s.app == "Gosub"] == ["frontdesk-dialstring"]
    assert [split_top(s.data, ",")[0] for s in cb.steps if s.app == "Dial"] == ["${FD_DIAL}"]


def test_forward_calls_to_me_dials_the_mobile_then_voicemail(plan: Dialplan) -> None:
    moved = plan.find_extension(MOVED, "+306912345678")
    assert moved is not None
    apps = [s.app for s in moved.steps]
    assert apps.index("Dial") < apps.index("UserEvent") < apps.index("Gosub", apps.index("Dial"))
    stage = [s.data for s in moved.steps if s.app == "Set" and s.data.startswith("FD_STAGE=")]
    assert stage == ["FD_STAGE=moved", "FD_STAGE="], "the hangup handler must see the move"
    [dial] = [s for s in moved.steps if s.app == "Dial"]
    assert split_top(dial.data, ",") == ["${FD_DIAL}", "${FD_RINGTIME}"]
    assert _gosub_context(moved.steps[-2]) == "frontdesk-voicemail"
    handler = plan.find_extension(HANGUP, "s")
    assert handler is not None
    reported = [s.data for s in handler.steps if "Set(FD_ANSWERED=forward)" in s.data]
    assert any('"${FD_STAGE}" = "moved"' in d for d in reported)


def _reads(data: str) -> set[str]:
    return set(_VARIABLE.findall(data))


def misused_dial_variables(plan: Dialplan) -> list[str]:
    """Names Dial() writes that the dialplan uses as its own, and DIALSTATUS read where a
    later stage may have changed it: anywhere but the step right after a Dial() or the
    hangup handler (which runs while the last stage is still the one that dialled)."""
    found: list[str] = []
    for context in plan.contexts.values():
        for ext in context.extensions.values():
            for index, step in enumerate(ext.steps):
                after_dial = index > 0 and ext.steps[index - 1].app == "Dial"
                for app, data in expanded(step):
                    written = {assignment(data)[0]} if app == "Set" else set()
                    for name in (_reads(data) | written) & WRITTEN_BY_DIAL:
                        found.append(f"line {step.line}: {name}")
                    if "DIALSTATUS" in written:
                        found.append(f"line {step.line}: sets DIALSTATUS")
                    if "DIALSTATUS" in _reads(data) and not (after_dial or context.name == HANGUP):
                        found.append(f"line {step.line}: reads DIALSTATUS away from its Dial")
    return found


def test_no_variable_of_ours_is_one_that_dial_writes(plan: Dialplan) -> None:
    assert misused_dial_variables(plan) == []


def test_the_dial_variable_check_catches_ringtime_read_after_a_dial() -> None:
    # What the forward fallback did: RINGTIME is 0 (or empty) once Dial() has run.
    bad = parse_dialplan(
        "[c]\nexten => s,1,Set(RINGTIME=20)\n same => n,Dial(PJSIP/a,${RINGTIME})\n"
        " same => n,Queue(q,r,,,${RINGTIME})\n same => n,Set(DIALSTATUS=NOANSWER)\n"
        " same => n,NoOp()\n same => n,UserEvent(E,S: ${DIALSTATUS})\n same => n,Return()\n"
    )
    assert misused_dial_variables(bad) == [
        "line 2: RINGTIME",
        "line 3: RINGTIME",
        "line 4: RINGTIME",
        "line 5: sets DIALSTATUS",
        "line 7: reads DIALSTATUS away from its Dial",
    ]


# --- the include: UserEvents ------------------------------------------------------------------


def test_user_events_have_exactly_the_interface_fields(plan: Dialplan) -> None:
    events = user_events(plan)
    assert {name for _, name, _ in events} == set(EXPECTED_EVENTS)
    for step, name, fields in events:
        assert tuple(k for k, _ in fields) == EXPECTED_EVENTS[name], f"line {step.line}"
        for key, value in fields:
            assert value == FIELD_VALUES[key], f"line {step.line}: {key}: {value}"


def test_call_and_call_end_are_sent_once_each(plan: Dialplan) -> None:
    events = user_events(plan)
    calls_ = [s for s, n, _ in events if n == "FrontdeskCall"]
    ends = [s for s, n, _ in events if n == "FrontdeskCallEnd"]
    assert len(calls_) == 1 and calls_[0].context == INBOUND
    assert len(ends) == 1
    handler = [
        j for j in jumps(plan) if j.step.app == "Set" and "hangup_handler_push" in j.step.data
    ]
    assert len(handler) == 1
    push = handler[0]
    assert push.step.context == INBOUND and push.step.priority > calls_[0].priority
    assert ends[0].context == push.context
    # The hangup handler reports the end: an h extension as well would report it twice.
    for context in plan.contexts.values():
        assert "h" not in context.extensions, context.name
    fallbacks = {s.context for s, n, _ in events if n == "FrontdeskFallback"}
    assert fallbacks == {"frontdesk-agent", "frontdesk-forward", MOVED, TRANSFER}


def test_events_mirror_the_captured_gateway_events_plus_linkedid() -> None:
    if not CAPTURES.is_dir():
        pytest.skip("no captures")
    captured: dict[str, tuple[str, ...]] = {}
    for path in CAPTURES.glob("*.ami"):
        for frame in path.read_bytes().decode("utf-8").split("\r\n\r\n"):
            lines = frame.split("\r\n")
            if "Event: UserEvent" not in lines:
                continue
            index = next(i for i, line in enumerate(lines) if line.startswith("UserEvent: "))
            name = lines[index].split(": ", 1)[1].replace("Gateway", "Frontdesk", 1)
            captured[name] = tuple(line.split(":", 1)[0] for line in lines[index + 1 :] if line)
    assert set(captured) == set(EXPECTED_EVENTS)
    for name, fields in captured.items():
        assert (*fields, *ADDED_FIELDS.get(name, ()), "Linkedid") == EXPECTED_EVENTS[name]


# --- the include: AstDB and sanitising ----------------------------------------------------------


def test_astdb_reads_are_documented_keys_of_family_frontdesk(plan: Dialplan) -> None:
    reads = astdb_reads(plan)
    keys = set()
    for step, c in reads:
        m = DB_KEY.fullmatch(c.args)
        assert m, f"line {step.line}: {c.args}"
        family, key, ddi = m.groups()
        assert family == ASTDB_FAMILY and ddi == "${DDI}", f"line {step.line}"
        keys.add(key)
    assert keys == ASTDB_KEYS
    assert not any(c.name.startswith("DB_") for s in plan.steps() for c in calls(s.data))


def test_the_one_astdb_write_is_the_end_journal_of_clean_fields(plan: Dialplan) -> None:
    """The hangup handler journals the call's end under frontdesk_end/<linkedid> (what
    gateway/pbx/journal.py parses): six `|`-separated fields, none an outsider can shape."""
    [(step, c, value)] = astdb_writes(plan)
    assert step.context == "frontdesk-hangup"
    assert c.args == "frontdesk_end/${CHANNEL(linkedid)}"
    fields = value.split("|")
    assert fields == [
        "${EPOCH}",
        "${DDI}",
        "${FD_DIALSTATUS}",
        "${FILTER(A-Z,${VMSTATUS})}",
        "${FD_ANSWERED}",
        "${FD_BY}",
    ]
    clean = clean_variables(plan)
    assert {"DDI", "FD_BY"} <= clean


def test_every_astdb_read_is_filtered(plan: Dialplan) -> None:
    for step, c in astdb_reads(plan):
        assert "FILTER" in c.ancestors, f"line {step.line}: unfiltered DB({c.args})"


def test_nothing_unfiltered_reaches_dial_queue_voicemail_or_events(plan: Dialplan) -> None:
    values = assignments(plan)
    clean = clean_variables(plan)
    checked = 0
    for step in plan.steps():
        for app, data in expanded(step):
            if app in SINKS:
                checked += 1
                assert unsafe(data, clean, set(values)) == [], f"line {step.line}: {data}"
    assert checked >= 10
    assert {"DDI", "SCENARIO", "MAILBOX", "FWD", "FD_RINGTIME", "FD_DIAL", "FD_BY"} <= clean


def test_ddi_and_numbers_keep_only_digits_and_plus(plan: Dialplan) -> None:
    values = assignments(plan)
    assert values["DDI"] == ["${FILTER(0-9+,${EXTEN})}"]
    assert values["FWD"][0] == "${FILTER(0-9+,${DB(frontdesk/forward/${DDI})})}"
    (dial,) = values["FD_DIAL"]
    assert "${FILTER(0-9+,${ARG1})}" in dial
    scenario = values["SCENARIO"][0]
    assert scenario.startswith("${FILTER(a-z,")


# --- the README --------------------------------------------------------------------------------


def _section(readme: str, heading: str) -> str:
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", readme, flags=re.MULTILINE)
    assert m, f"README has no section {heading!r}"
    rest = readme[m.end() :]
    end = re.search(rf"^#{{1,{len(m.group(1))}}} ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


def _table_keys(section: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_readme_documents_every_astdb_key(plan: Dialplan, readme: str) -> None:
    used = {c.args.split("/")[1] for _, c in astdb_reads(plan)}
    table = _table_keys(_section(readme, f"AstDB keys (family `{ASTDB_FAMILY}`)"))
    assert {k.removesuffix("/<ddi>") for k in table} == used
    assert "asterisk -rx 'database put frontdesk scenario/2100001 voicemail'" in readme
    assert "DBPut" in readme


def test_readme_documents_every_user_event_and_field(plan: Dialplan, readme: str) -> None:
    for _, name, fields in user_events(plan):
        documented = _table_keys(_section(readme, name))
        assert tuple(documented) == tuple(k for k, _ in fields), name


def test_readme_documents_globals_contexts_and_ami_user(plan: Dialplan, readme: str) -> None:
    text = CONF.read_text(encoding="utf-8")
    used_globals = set(re.findall(r"\bFRONTDESK_[A-Z_]+\b", text))
    assert used_globals == set(GLOBAL_DEFAULTS)
    assert set(_table_keys(_section(readme, "Global variables"))) == used_globals
    assert set(_table_keys(_section(readme, "Contexts"))) == set(plan.contexts)
    ami = _section(readme, "AMI user for the gateway (`manager.conf`)")
    assert re.search(r"^read = call,user,system,agent$", ami, flags=re.MULTILINE)
    # `agent` write: agents' presence (QueueAdd, QueueRemove, QueuePause).
    assert re.search(r"^write = system,call,originate,agent$", ami, flags=re.MULTILINE)
    for action in ("DBPut", "Originate", "Redirect", "UserEvent", "MessageWaiting", "QueueAdd"):
        assert action in ami, action
    recipe = _section(readme, "Test recipe")
    assert "channel originate Local/2100001@frontdesk-inbound application Wait 30" in recipe


def test_put_through_rings_the_target_then_falls_back(plan: Dialplan) -> None:
    """[frontdesk-transfer]: the gateway's Setvar FD_XFER_TO then Redirect. The mobile is
    dialled through the trunk with the urgent announcement, then voicemail; an agent or
    an extension is dialled as given (filtered), then the agents' queue again."""
    mobile = plan.find_extension(TRANSFER, "mobile")
    assert mobile is not None
    [dial] = [s for s in mobile.steps if s.app == "Dial"]
    assert split_top(dial.data, ",") == ["${FD_DIAL}", "${FD_RINGTIME}", "A(${FD_XFER_SOUND})"]
    assert [_gosub_context(s) for s in mobile.steps if s.app == "Gosub"] == [
        "frontdesk-dialstring",
        "frontdesk-voicemail",
    ]
    stage = [s.data for s in mobile.steps if s.app == "Set" and s.data.startswith("FD_STAGE=")]
    assert stage == ["FD_STAGE=moved", "FD_STAGE="], "reported as the mobile's answer"
    assert "FD_MOVED_TO=${FILTER(0-9+,${FD_XFER_TO})}" in {s.data for s in mobile.steps}
    for name in ("agent", "extension"):
        ext = plan.find_extension(TRANSFER, name)
        assert ext is not None and ext.steps[-1].app == "Goto", name
        [target] = [s.data for s in ext.steps if s.data.startswith("FD_XFER_DIAL=")]
        assert "${FILTER(" in target and "${FD_XFER_TO}" in target, name
        # Every variable in the dial string is read only through FILTER().
        assert re.sub(r"\$\{FILTER\([^,]*,\$\{\w+\}\)\}", "", target).count("${") == 0, name
    ring = plan.find_extension(TRANSFER, "dial")
    assert ring is not None
    assert [split_top(s.data, ",") for s in ring.steps if s.app == "Dial"] == [
        ["${FD_XFER_DIAL}", "${FD_RINGTIME}"]
    ]
    assert [_gosub_context(s) for s in ring.steps if s.app == "Gosub"] == ["frontdesk-agent"]
    # Nothing of the transfer touches the stage the queue set: an agent answered this call.
    assert not any(s.data.startswith("FD_STAGE=") for s in ring.steps)
    # Digits only for an extension, and nothing reaches Dial that could add a channel.
    assert plan.find_extension(TRANSFER, "2100001") is None
