"""Kill drill: notifications sent by a gateway that is SIGKILLed at random points.

    python bench/kill_outbox.py [--notifications 1000] [--kills 3] [--seed 7]

The real `main.py run` runs as a child process against the sandbox Bot API and SMSC. The
notifications are written first (half by Telegram, the rest by SMS with Telegram as the
fallback, a tenth of them to a number whose receipts say UNDELIV). The gateway is killed
with SIGKILL each time the peers have received a seeded-random number of messages, and
restarted; after the last restart it runs until everything is settled. Prints the kill
points, lost notifications, duplicates per channel (the same notification received twice
by the peer) and the final states of the SMS deliveries. Exits 1 unless nothing was lost,
each channel has at most one duplicate per kill and every SMS is delivered or fell back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.control import admin  # noqa: E402
from gateway.delivery.notices import Notices  # noqa: E402
from models.database import close_db, migrate, open_db  # noqa: E402
from models.db import Role, Urgency, User  # noqa: E402
from models.settings import RoutingSettings  # noqa: E402
from sandbox.ami_server import AmiServer  # noqa: E402
from sandbox.smsc import ShortMessage, SmscServer, _Session  # noqa: E402
from sandbox.telegram_api import BotApiServer  # noqa: E402

TOKEN = "424242:KILL-token"
SECRET = "kill-secret"
SMPP_ID, SMPP_PASSWORD = "kill", "kill-pw"
MARK = re.compile(r"drill-(\d{5})-drill")
RECEIPT_ID = re.compile(rb"id:(\w+) ")
WAIT = 120.0  # for the whole drill to settle after the last restart


@dataclass(frozen=True)
class Party:
    name: str
    chat: int
    route: tuple[str, ...]
    mobile: str = ""
    kind: str = "telegram"  # "telegram", "sms" or "undeliv" (an SMS whose receipt fails)


# Offices of each kind, the messages spread over them: the bot paces one chat to about a
# message a second, as Telegram does, so a thousand messages to one chat would take minutes.
OFFICES = 100
TELEGRAM = tuple(Party(f"Telegram office {i}", 910_000 + i, ("telegram",)) for i in range(OFFICES))
SMS = tuple(
    Party(f"SMS office {i}", 920_000 + i, ("sms", "telegram"), f"+30694420{i:04d}", "sms")
    for i in range(OFFICES)
)
UNDELIVERABLE = tuple(
    Party(f"Unreachable {i}", 930_000 + i, ("sms", "telegram"), f"+30694430{i:04d}", "undeliv")
    for i in range(OFFICES)
)
PARTIES = TELEGRAM + SMS + UNDELIVERABLE


def party_of(n: int) -> Party:
    """Half by Telegram, four tenths by SMS, one tenth by an SMS that fails, then Telegram."""
    tenth, office = n % 10, (n // 10) % OFFICES
    return (TELEGRAM if tenth < 5 else SMS if tenth < 9 else UNDELIVERABLE)[office]


class ReceiptKeepingSmsc(SmscServer):
    """As real SMSCs do, a receipt whose deliver_sm was never answered (the receiver died)
    is kept and delivered again on the next bind, not dropped as the sandbox does. Keeps
    the message ids of receipts the gateway acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acknowledged: set[str] = set()

    def _deliver(self, session: _Session, sm: ShortMessage) -> asyncio.Future[int]:
        answer = super()._deliver(session, sm)
        answer.add_done_callback(lambda done: self._again_if_lost(done, sm))
        return answer

    def _again_if_lost(self, answer: asyncio.Future[int], sm: ShortMessage) -> None:
        if answer.cancelled():
            return
        if answer.exception() is None:
            if m := RECEIPT_ID.match(sm.short_message):
                self.acknowledged.add(m[1].decode())
            return
        session = self._receiver()
        if session is None:
            self._undelivered.append(sm)
        else:
            self._deliver(session, sm)


@dataclass
class Figures:
    notifications: int
    seed: int
    kill_points: list[int]
    killed_at: list[int] = field(default_factory=list)  # messages the peers had at each kill
    lost: list[int] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    sms_states: dict[str, int] = field(default_factory=dict)
    sms_without_fallback: list[int] = field(default_factory=list)
    # Notifications whose SMS is still `sent`: without a part row (the send's parts were
    # lost), or whose receipt the gateway acknowledged to the SMSC and died before storing
    # (an undeliverable one then never falls back, and counts as lost too).
    sms_without_parts: list[int] = field(default_factory=list)
    sms_receipt_lost: list[int] = field(default_factory=list)
    seconds: float = 0.0
    settled: bool = True  # everything reached its end before the drill's time ran out

    @property
    def kills(self) -> int:
        return len(self.kill_points)

    def acceptable(self) -> bool:
        return (
            self.settled
            and not self.lost
            and all(n <= self.kills for n in self.duplicates.values())
            and set(self.sms_states) <= {"delivered", "failed"}
            and not self.sms_without_fallback
        )

    def lines(self) -> list[str]:
        return [
            f"notifications {self.notifications}, seed {self.seed}, {self.kills} SIGKILLs",
            f"kill points (messages received by the peers): {self.kill_points}",
            f"  killed when the peers had: {self.killed_at}",
            f"lost: {len(self.lost)} {self.lost[:10]}",
            "duplicates: " + ", ".join(f"{c} {n}" for c, n in sorted(self.duplicates.items())),
            "SMS deliveries: " + ", ".join(f"{s} {n}" for s, n in sorted(self.sms_states.items())),
            f"SMS failed without a Telegram fallback: {len(self.sms_without_fallback)}",
            f"SMS `sent` without parts: {len(self.sms_without_parts)}",
            f"SMS `sent` whose receipt a killed gateway acknowledged, unstored: "
            f"{len(self.sms_receipt_lost)}",
            f"took {self.seconds:.1f}s" + ("" if self.settled else " (timed out)"),
        ]


class Peers:
    """The sandbox Bot API and SMSC, and what they received, by notification number."""

    def __init__(self, bot: BotApiServer, smsc: SmscServer) -> None:
        self.bot = bot
        self.smsc = smsc
        self.chats = {str(p.chat) for p in PARTIES}

    def telegram(self) -> list[int]:
        return [
            int(m[1])
            for c in self.bot.sent
            if c.method == "sendMessage" and str(c.params.get("chat_id")) in self.chats
            if (m := MARK.search(str(c.params.get("text", ""))))
        ]

    def sms(self) -> list[int]:
        return [int(m[1]) for r in self.smsc.messages if (m := MARK.search(r.text))]

    def received(self) -> int:
        return len(self.telegram()) + len(self.sms())

    async def wait(self, condition: Callable[[], bool], timeout: float) -> None:
        """Until either peer's news makes `condition` true."""
        waiters = [
            asyncio.ensure_future(self.bot.wait_until(condition, timeout, "the drill")),
            asyncio.ensure_future(self.smsc.wait_until(condition, timeout)),
        ]
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()

    def complete(self, count: int) -> bool:
        """Every notification reached where it ends: Telegram, or the SMSC (and, for the
        undeliverable number, Telegram after it)."""
        on_telegram, on_sms = set(self.telegram()), set(self.sms())
        return all(
            (n in on_sms) if party_of(n).kind == "sms" else (n in on_telegram) for n in range(count)
        ) and all(n in on_sms for n in range(count) if party_of(n).kind == "undeliv")


def write_config(workdir: Path, ami: AmiServer, bot: BotApiServer, smsc: SmscServer) -> Path:
    path = workdir / "frontdesk.toml"
    path.write_text(
        f"""
[database]
url = "sqlite://{workdir / "kill.sqlite3"}"
[ami]
port = {ami.port}
reconnect_min = 0.05
[telegram]
base_url = "{bot.base_url}"
base_file_url = "{bot.base_file_url}"
poll_timeout = 1.0
[smpp]
host = "{smsc.host}"
port = {smsc.port}
system_id = "{SMPP_ID}"
reconnect_min = 0.1
reconnect_max = 0.5
response_timeout = 2.0
[routing]
default_channels = "telegram"
[http]
port = 0
[outbox]
lease_seconds = 1.0
idle_poll = 0.1
retry_initial = 0.2
retry_max = 1.0
""",
        "utf-8",
    )
    return path


def child_env() -> dict[str, str]:
    return {
        **os.environ,
        "FRONTDESK__AMI__SECRET": SECRET,
        "FRONTDESK__TELEGRAM__TOKEN": TOKEN,
        "FRONTDESK__SMPP__PASSWORD": SMPP_PASSWORD,
    }


async def seed_database(url: str, count: int) -> None:
    """The subscribers and every notification, before the gateway starts."""
    await migrate(url)
    await open_db(url)
    try:
        ids = {}
        for n, party in enumerate(PARTIES):
            created = await admin.add_subscriber(
                name=party.name,
                ddis=[f"21{n:05d}"],
                language="en",
                timezone="Europe/Athens",
                mobile=party.mobile or None,
            )
            sid = created.subscriber.id
            await admin.set_contact_points(sid, quiet_hours="")
            await admin.set_route(sid, "message", Urgency.NORMAL, list(party.route))
            await User.create(
                name=party.name,
                role=Role.SUBSCRIBER,
                telegram_chat_id=party.chat,
                subscriber=created.subscriber,
            )
            ids[party.name] = sid
        notices = Notices({"telegram", "sms"}, RoutingSettings(default_channels="telegram"))
        for n in range(count):
            text = f"Call back, drill-{n:05d}-drill."
            await admin.take_message(notices, ids[party_of(n).name], text)
    finally:
        await close_db()


async def start_gateway(config: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "main.py",
            "run",
            "-c",
            str(config),
            cwd=ROOT,
            env=child_env(),
            stderr=sink,
        )


def unsettled(database: Path, acknowledged: set[str]) -> int:
    """Rows the gateway still has to move: not sent yet, or an SMS whose receipt the SMSC
    has not handed over yet (a sent SMS without parts never gets one: not waited for)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        (due,) = db.execute(
            "SELECT COUNT(*) FROM delivery WHERE status IN ('pending', 'sending')"
        ).fetchone()
        parts = db.execute(
            "SELECT p.message_id FROM delivery d JOIN delivery_part p ON p.delivery_id = d.id"
            " WHERE d.channel = 'sms' AND d.status = 'sent'"
        ).fetchall()
    return int(due) + sum(1 for (part,) in parts if part not in acknowledged)


async def wait_settled(database: Path, acknowledged: set[str], timeout: float) -> None:
    """The database belongs to another process and tells nobody: look, a bounded number
    of times."""
    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(unsettled, database, acknowledged):
        if time.monotonic() > deadline:
            raise TimeoutError("the gateway did not settle every delivery")
        await asyncio.sleep(0.1)


def sms_outcomes(database: Path) -> tuple[dict[str, int], list[int]]:
    """SMS delivery states, and failed SMS whose notification sent nothing by Telegram."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        states = Counter(
            status for (status,) in db.execute("SELECT status FROM delivery WHERE channel='sms'")
        )
        orphans = [
            nid
            for (nid,) in db.execute(
                "SELECT d.notification_id FROM delivery d WHERE d.channel = 'sms'"
                " AND d.status = 'failed' AND NOT EXISTS (SELECT 1 FROM delivery t"
                " WHERE t.notification_id = d.notification_id AND t.channel = 'telegram'"
                " AND t.status = 'sent')"
            )
        ]
    return dict(states), orphans


def stuck_sms(database: Path, acknowledged: set[str]) -> tuple[list[int], list[int]]:
    """Notifications whose SMS was left `sent`: without parts, or with its receipt lost."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT d.text, p.message_id FROM delivery d LEFT JOIN delivery_part p"
            " ON p.delivery_id = d.id WHERE d.channel = 'sms' AND d.status = 'sent'"
        ).fetchall()
    numbers = [(int(m[1]) if (m := MARK.search(text)) else -1, part) for text, part in rows]
    no_parts = sorted({n for n, part in numbers if part is None})
    lost = sorted({n for n, part in numbers if part is not None and part in acknowledged})
    return no_parts, lost


def duplicates(numbers: list[int]) -> int:
    return sum(n - 1 for n in Counter(numbers).values() if n > 1)


def kill_points(rng: random.Random, expected: int, kills: int) -> list[int]:
    """Distinct message counts spread over the first four fifths of the run."""
    return sorted(rng.sample(range(1, max(int(expected * 0.8), kills + 1)), kills))


def expected_messages(count: int) -> int:
    kinds = Counter(party_of(n).kind for n in range(count))
    return count + kinds["undeliv"]  # the undeliverable ones go out twice


async def drill(workdir: Path, count: int, kills: int, seed: int) -> Figures:
    started = time.monotonic()
    rng = random.Random(seed)
    figures = Figures(count, seed, kill_points(rng, expected_messages(count), kills))
    database = workdir / "kill.sqlite3"
    log = workdir / "gateway.log"
    async with (
        AmiServer(secret=SECRET) as ami,
        BotApiServer(TOKEN) as bot,
        ReceiptKeepingSmsc(system_id=SMPP_ID, password=SMPP_PASSWORD) as smsc,
    ):
        for party in UNDELIVERABLE:
            smsc.fail_receipts(party.mobile.lstrip("+"))
        config = write_config(workdir, ami, bot, smsc)
        await seed_database(f"sqlite://{database}", count)
        peers = Peers(bot, smsc)
        for point in figures.kill_points:
            gateway = await start_gateway(config, log)
            try:
                await peers.wait(lambda p=point: peers.received() >= p, WAIT)  # type: ignore[misc]
            finally:
                gateway.send_signal(signal.SIGKILL)
                await gateway.wait()
            figures.killed_at.append(peers.received())
        gateway = await start_gateway(config, log)
        try:
            await peers.wait(lambda: peers.complete(count), WAIT)
            await wait_settled(database, smsc.acknowledged, WAIT)
        except TimeoutError:
            figures.settled = False  # the figures below say what is missing
        finally:
            gateway.send_signal(signal.SIGTERM)
            await asyncio.wait_for(gateway.wait(), WAIT)
        on_telegram, on_sms = peers.telegram(), peers.sms()
    figures.lost = [
        n
        for n in range(count)
        if n not in (set(on_sms) if party_of(n).kind == "sms" else set(on_telegram))
    ]
    figures.duplicates = {"telegram": duplicates(on_telegram), "sms": duplicates(on_sms)}
    figures.sms_states, figures.sms_without_fallback = sms_outcomes(database)
    figures.sms_without_parts, figures.sms_receipt_lost = stuck_sms(database, smsc.acknowledged)
    figures.seconds = time.monotonic() - started
    return figures


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", help="a folder to keep the database and gateway log in")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        figures = asyncio.run(drill(workdir, args.notifications, args.kills, args.seed))
    print("\n".join(figures.lines()))
    return 0 if figures.acceptable() else 1


if __name__ == "__main__":
    sys.exit(main())
