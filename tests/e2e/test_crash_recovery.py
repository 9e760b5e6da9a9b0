"""A gateway process killed with SIGKILL mid-delivery delivers the message once after restart.

The real `main.py run` runs as a child process against the sandbox AMI and Bot API served
by this test. The Bot API holds the sendMessage (the row is claimed and its request is in
flight), the process is killed, and a fresh process must deliver it exactly once.
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer, Call
from tests.stack import environment, run_main, sandbox_config, start_main

TOKEN = "654321:CRASH-token"
SECRET = "crash-secret"
CHAT = 777
DDI = "2100009"
WAIT = 20.0


def _env() -> dict[str, str]:
    # Secrets by environment, as operators are told to do.
    return environment(FRONTDESK__AMI__SECRET=SECRET, FRONTDESK__TELEGRAM__TOKEN=TOKEN)


async def _cli(config: Path, *args: str) -> str:
    return await run_main(*args, "-c", str(config), env=_env())


async def _start_gateway(config: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as sink:
        return await start_main("run", "-c", str(config), env=_env(), stderr=sink)


def _is_missed_call(call: Call) -> bool:
    return (
        call.method == "sendMessage"
        and str(call.params.get("chat_id")) == str(CHAT)
        and "reply_markup" in call.params
    )


async def test_sigkill_between_claim_and_send_then_restart_delivers_once(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    async with AmiServer(secret=SECRET) as ami, BotApiServer(TOKEN) as bot:
        config = sandbox_config(tmp_path, ami, bot, tmp_path / "crash.sqlite3")
        added = await _cli(
            config, "subscriber", "add", "--name", "Γραφείο Κ.", "--ddi", DDI, "--language", "el"
        )
        match = re.search(r"link code: (\S+)", added)
        assert match, added

        first = await _start_gateway(config, log)
        try:
            await ami.wait_logged_in(1, timeout=WAIT)
            bot.inject_message(CHAT, f"/start {match[1]}", language_code="el")
            await bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)

            bot.stall("sendMessage")
            frames = CallFactory().missed(ddi=DDI, caller_num="+302101111111", caller_name="Άννα")
            await ami.play(frames, chunk_sizes=[11])
            [held] = await bot.wait_stalled(1, timeout=WAIT)
            assert _is_missed_call(held)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert first.returncode == -signal.SIGKILL

        bot.release()
        second = await _start_gateway(config, log)
        try:
            await bot.wait_until(
                lambda: any(_is_missed_call(c) for c in bot.sent), WAIT, "the redelivery"
            )
            listing = await _cli(config, "deliveries", "--status", "sent")
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), WAIT)

    logged = log.read_text()
    assert second.returncode == 0, logged
    assert "AMI logged in" in logged and "stopping" in logged
    # Secrets come from the environment and never reach the log (not even in Bot API URLs).
    assert TOKEN not in logged and TOKEN.split(":")[1] not in logged and SECRET not in logged
    delivered = [c for c in bot.sent if _is_missed_call(c)]
    assert len(delivered) == 1, log.read_text()
    assert "Άννα" in delivered[0].params["text"]
    # The held request died with the first process: the Bot API never delivered it.
    attempts = [c for c in bot.requests if _is_missed_call(c)]
    assert [c.ok for c in attempts] == [False, True]
    # The row is `sent` after two claims, so no later lease expiry can send it again.
    [row] = [line.split("\t") for line in listing.splitlines() if "\tmissed_call\t" in line]
    assert row[4:6] == ["sent", "attempts=2"]
