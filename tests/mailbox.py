"""A real SMTP server for the mail tests: aiosmtpd on a free loopback port.

Test modules import the fixtures (`smtp_port`, `smtp_server`) and set `MAIL_URL` to the
port in their own `app_config`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps what it receives; refuses the addresses in `refuse`
    (550 at RCPT TO) and, when `hold` is set, keeps the first DATA waiting until `release`
    is set (a worker caught in the middle of a send)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()
        self.refuse: set[str] = set()
        self.hold = False
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's name
        if self.hold and not self.holding.is_set():
            self.holding.set()
            # Wait without blocking the server's loop: other workers' sessions go on.
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def parsed(self):
        return [message_from_bytes(raw, policy=default_policy) for _f, _t, raw in self.messages]

    def recipients(self) -> list[str]:
        return sorted(t for _f, tos, _raw in self.messages for t in tos)


@pytest.fixture(scope="module")
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def smtp_server(smtp_port):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield inbox
    inbox.release.set()
    controller.stop()
