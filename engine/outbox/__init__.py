"""The outbox: message keys, queue, transports (file, SMTP), dispatch.

keys.py        MessageKey: the text key of each queued message, built and read in one place
queue.py       queue a message once under its key; supersede versions not sent yet; retry failed ones
transports.py  the e-mail built from a queued row, FileTransport, SmtpTransport, their failures
withhold.py    why a queued message must no longer go out (newer version, answered, DV lock)
dispatch.py    send_pending (lock, crash recovery, members only, marks, backoff)
"""

from engine.outbox.dispatch import BACKOFF_MINUTES, SendResult, send_pending
from engine.outbox.keys import MessageKey
from engine.outbox.queue import retry
from engine.outbox.transports import (
    FileTransport,
    PermanentFailure,
    ServerUnavailable,
    SmtpTransport,
    TemporaryFailure,
    Uncertain,
)

__all__ = [
    "BACKOFF_MINUTES",
    "FileTransport",
    "MessageKey",
    "PermanentFailure",
    "SendResult",
    "ServerUnavailable",
    "SmtpTransport",
    "TemporaryFailure",
    "Uncertain",
    "retry",
    "send_pending",
]
