"""A private, real Asterisk for the live tests and `main.py demo --pbx`.

Not a stand-in: it runs the Asterisk binary handed to us (a launcher script taking
`start STATE ETC` and `rx STATE "command"`) with a configuration written here. The shipped
dialplan include is copied in unchanged; around it sit small test contexts that play the
outside world over Local channels:

- `test-inbound`: the carrier's trunk delivering a DID (channel variable DID) to
  `[frontdesk-inbound]`; every inbound channel is `Local/trunk@test-inbound-<n>`;
- `test-caller`: the caller's half of an originated call, after the PBX answers it: waits
  `CALLER_WAIT` s, plays `CALLER_SAY` (a sound file), holds `CALLER_HOLD` s, hangs up;
- `test-agents`: queue members `Local/<name>@test-agents`, each behaving as AstDB key
  `test/agent/<name>` says: `answer` (after 1 s, then talks `test/talk` s), `reject`
  (busy) or anything else (rings until cancelled);
- `test-pstn`: the trunk behind `FRONTDESK_TRUNK`; outside numbers behave as
  `test/pstn/<number>` says, the same words, `answer` when unset.

Prompts (voicemail greeting words, digits, beep, the closed announcement) are spoken by
espeak-ng and shaped by sox into STATE/data/sounds/en, as 8 kHz mono 16-bit WAV.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# What the dialplan makes Asterisk play (app_voicemail's unavailable greeting, its
# instructions and beep, the mailbox digits, the closed announcement), as spoken here.
PROMPTS: dict[str, str] = {
    "vm-theperson": "The person at extension",
    "vm-isunavail": "is unavailable.",
    "vm-intro": "Please leave your message after the tone.",
    "auth-thankyou": "Thank you.",
    "frontdesk-closed": "The office is closed. Please leave a message.",
    **{
        f"digits/{d}": word
        for d, word in enumerate("zero one two three four five six seven eight nine".split())
    },
}
BEEP = "beep"
TOOLS = ("espeak-ng", "sox")

AMI_USER = "frontdesk"
HARNESS_USER = "harness"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def make_prompts(target: Path, extra: Mapping[str, Path] | None = None) -> None:
    """Speak every prompt into `target` (a sounds/<lang> folder); blocking, run it once."""
    for name, text in PROMPTS.items():
        wav = target / f"{name}.wav"
        if wav.exists():
            continue
        wav.parent.mkdir(parents=True, exist_ok=True)
        raw = wav.with_suffix(".raw.wav")
        subprocess.run(["espeak-ng", "-s", "190", "-w", str(raw), text], check=True)
        _to_telephone(raw, wav)
        raw.unlink()
    beep = target / f"{BEEP}.wav"
    if not beep.exists():
        _sox(["-n"], beep, ["synth", "0.25", "sine", "1000"])
    for name, source in (extra or {}).items():
        _to_telephone(source, target / f"{name}.wav")


def wav_seconds(path: Path) -> float:
    """Length of an 8 kHz mono 16-bit WAV made by make_prompts."""
    return max(path.stat().st_size - 44, 0) / 16000


def greeting_seconds(sounds: Path, box: str, instructions: bool = True) -> float:
    """How long app_voicemail's built-in unavailable greeting for `box` lasts, up to the
    end of the beep: vm-theperson, the box's digits, vm-isunavail, vm-intro (unless the
    instructions are skipped), beep. A caller who speaks after this is recorded."""
    names = ["vm-theperson", *(f"digits/{d}" for d in box if d.isdigit()), "vm-isunavail"]
    names += ["vm-intro"] if instructions else []
    return sum(wav_seconds(sounds / f"{n}.wav") for n in [*names, BEEP])


# What Asterisk's `wav` format is: 8 kHz mono 16-bit signed PCM.
TELEPHONE = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]


def _sox(inputs: list[str], target: Path, effects: list[str] | None = None) -> None:
    subprocess.run(["sox", *inputs, *TELEPHONE, str(target), *(effects or [])], check=True)


def _to_telephone(source: Path, target: Path) -> None:
    _sox([str(source)], target)


@dataclass
class PbxConfig:
    """What the private PBX is made of; every field has a default fit for the tests."""

    dialplan: Path  # the shipped include, copied in unchanged
    agents: tuple[str, ...] = ("agent1", "agent2")  # static queue members
    # Phones in test-agents that are no member until someone adds them (QueueAdd).
    dynamic_agents: tuple[str, ...] = ()
    # queues.conf persistentmembers: dynamic members survive a restart (in AstDB).
    persistent_members: bool = False
    mailboxes: Iterable[str] = ()  # boxes in context default
    ami_secret: str = "frontdesk-live-secret"
    harness_secret: str = "harness-live-secret"
    minsecs: int = 0  # app_voicemail's own default: a 0-second message is kept
    member_timeout: int = 4  # seconds one ring attempt at an agent lasts (queues.conf)
    extra_globals: Mapping[str, str] = field(default_factory=dict)


class PrivateAsterisk:
    """One Asterisk process with its own state folder and AMI port on loopback."""

    def __init__(self, launcher: Path, root: Path, config: PbxConfig) -> None:
        self.launcher = launcher
        self.root = root
        self.config = config
        self.etc = root / "etc"
        self.state = root / "state"
        self.ami_port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def sounds(self) -> Path:
        return self.state / "data" / "sounds" / "en"

    @property
    def spool(self) -> Path:
        """Where app_voicemail keeps messages: <context>/<box>/INBOX/msgNNNN.*."""
        return self.state / "spool" / "voicemail"

    def write_config(self) -> None:
        self.etc.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.config.dialplan, self.etc / "extensions_frontdesk.conf")
        for name, text in self._files().items():
            (self.etc / name).write_text(text, "utf-8")

    def _files(self) -> dict[str, str]:
        c = self.config
        members = "\n".join(f"member => Local/{a}@test-agents" for a in c.agents)
        boxes = "\n".join(f"{box} => 0000,Box {box}" for box in c.mailboxes)
        extra = "\n".join(f"{k} = {v}" for k, v in c.extra_globals.items())
        # One extension per agent: Local members of a pattern extension show as Invalid
        # (and "agent" is no pattern: N matches a digit).
        agents = "\n".join(
            f"exten => {a},1,Gosub(test-behave,s,1(${{DB(test/agent/{a})}}))\n same => n,Hangup()"
            for a in (*c.agents, *c.dynamic_agents)
        )
        persistent = "yes" if c.persistent_members else "no"
        return {
            "modules.conf": "[modules]\nautoload = yes\n",
            "logger.conf": "[general]\n[logfiles]\nmessages.log => notice,warning,error,verbose\n",
            "asterisk.conf": "",
            "manager.conf": (
                "[general]\nenabled = yes\nbindaddr = 127.0.0.1\n"
                f"port = {self.ami_port}\n\n"
                # The gateway's user, as deploy/asterisk/README.md recommends.
                f"[{AMI_USER}]\nsecret = {c.ami_secret}\n"
                "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
                "read = call,user,system,agent\nwrite = system,call,originate,agent\n"
                "writetimeout = 1000\n"
                "eventfilter = !Event: DeviceStateChange\neventfilter = !Event: CEL\n\n"
                # The test harness: places calls, watches everything.
                f"[{HARNESS_USER}]\nsecret = {c.harness_secret}\n"
                "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
                "read = all\nwrite = all\n"
            ),
            "queues.conf": (
                f"[general]\npersistentmembers = {persistent}\n\n"
                "[frontdesk-agents]\nstrategy = ringall\n"
                f"timeout = {c.member_timeout}\nretry = 1\ntimeoutpriority = app\n"
                "joinempty = unavailable,invalid,unknown\n"
                "leavewhenempty = unavailable,invalid,unknown\n"
                f"ringinuse = no\nsetinterfacevar = yes\n{members}\n"
            ),
            "voicemail.conf": (
                f"[general]\nformat = wav\nminsecs = {c.minsecs}\nmaxsecs = 60\n"
                f"attach = no\n\n[default]\n{boxes}\n"
            ),
            "extensions.conf": _EXTENSIONS.format(extra_globals=extra, agents=agents),
        }

    async def start(self, timeout: float = 60.0) -> None:
        """Start (or restart, keeping AstDB and the spool) and wait until fully booted."""
        if self.starts == 0:
            self.write_config()
        self.state.mkdir(parents=True, exist_ok=True)
        log = (self.root / "console.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            str(self.launcher),
            "start",
            str(self.state),
            str(self.etc),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        async with asyncio.timeout(timeout):
            # The control socket appears a moment after the process starts; then
            # `core waitfullybooted` returns exactly when Asterisk is ready.
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"Asterisk exited with {self.process.returncode}")
                code, _ = await self._rx("core waitfullybooted")
                if code == 0:
                    break
                await asyncio.sleep(0.05)

    async def _rx(self, command: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            str(self.launcher),
            "rx",
            str(self.state),
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode("utf-8", "replace")

    async def rx(self, command: str) -> str:
        """A CLI command against this PBX; raises if the CLI could not reach it."""
        code, out = await self._rx(command)
        if code != 0:
            raise RuntimeError(f"asterisk -rx {command!r} failed ({code}): {out.strip()}")
        return out

    async def db_put(self, family: str, key: str, value: str) -> None:
        await self.rx(f"database put {family} {key} {value}")

    async def db_get(self, family: str, key: str) -> str | None:
        out = await self.rx(f"database get {family} {key}")
        return out.split("Value:", 1)[1].strip() if "Value:" in out else None

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Stop it by signal (SIGKILL: a crash with no Hangup events); its exit code."""
        proc = self.process
        if proc is None or proc.returncode is not None:
            return proc.returncode if proc is not None and proc.returncode is not None else 0
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            async with asyncio.timeout(timeout):
                return await proc.wait()
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            return await proc.wait()

    def log_text(self) -> str:
        path = self.state / "log" / "messages.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""


_EXTENSIONS = """\
[general]
static = yes
writeprotect = yes

[globals]
FRONTDESK_QUEUE = frontdesk-agents
FRONTDESK_TRUNK = Local/{{NUMBER}}@test-pstn
{extra_globals}

#include extensions_frontdesk.conf

; --- the outside world, for tests: none of this is shipped ---

[test-inbound]
; The carrier's trunk: the DID comes as a variable, the channel is named after the trunk.
exten => trunk,1,Goto(frontdesk-inbound,${{DID}},1)

[test-caller]
; The caller's half once the PBX answered (or an agent picked up).
exten => s,1,Wait(${{IF($["${{CALLER_WAIT}}" = ""]?0.2:${{CALLER_WAIT}})}})
 same => n,ExecIf($["${{CALLER_SAY}}" != ""]?Playback(${{CALLER_SAY}}))
 same => n,ExecIf($["${{CALLER_HOLD}}" != ""]?Wait(${{CALLER_HOLD}}))
 same => n,Hangup()

[test-behave]
; Gosub(test-behave,s,1(<mode>)): answer | reject | anything else rings until cancelled.
exten => s,1,GotoIf($["${{ARG1}}" = "answer"]?answer)
 same => n,GotoIf($["${{ARG1}}" = "reject"]?reject)
 same => n,Ringing()
 same => n,Wait(600)
 same => n,Hangup()
 same => n(answer),Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait(${{IF($["${{DB(test/talk)}}" = ""]?2:${{DB(test/talk)}})}})
 same => n,Hangup()
 same => n(reject),Busy(5)
 same => n,Hangup()

[test-agents]
{agents}

[test-pstn]
exten => _[+0-9].,1,Set(MODE=${{DB(test/pstn/${{EXTEN}})}})
 same => n,Gosub(test-behave,s,1(${{IF($["${{MODE}}" = ""]?answer:${{MODE}})}}))
 same => n,Hangup()
"""
