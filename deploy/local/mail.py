"""A local SMTP server (aiosmtpd) for `make run` and the tests: it delivers nothing, it keeps what it
receives, in memory and, when given a directory, one `.eml` file per message."""

from __future__ import annotations

import email
import threading
import time
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MailSink:
    def __init__(self, port: int, directory: Path | None = None, host: str = "127.0.0.1") -> None:
        self.host, self.port, self.directory = host, port, directory
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname=host, port=port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        message = email.message_from_bytes(content, policy=default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
            count = len(self.messages)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{count:05d}.eml").write_bytes(content)
        return "250 Message accepted for delivery"

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
