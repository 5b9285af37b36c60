import pytest

from tests.helpers.faulty_smtp import AioSmtp, Plan, RawSmtp


@pytest.fixture
def start():
    """start("raw" | "aiosmtpd", port=0) → a running server with a fresh Plan; stopped after the test."""
    running = []

    def _start(kind: str = "raw", port: int = 0):
        server = RawSmtp(Plan(), port) if kind == "raw" else AioSmtp(Plan(), port)
        running.append(server)
        return server

    yield _start
    for server in running:
        server.stop()
