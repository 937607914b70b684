"""A closed requestor server serves nothing more, not even on connections it accepted before closing.

An in-process requestor served by `serve_requestor` on a real loopback port, and clients with their own
channels (tests/node/wire.py), dialled before the shutdown and never dialled again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from grpclib.const import Status

from apps.sdk.process import free_port
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import RequestorServer, serve_requestor

from .cluster import wait_until
from .wire import Control, Loop, RawProvider

HOST = "127.0.0.1"
PROVIDER_TOKEN = "shutdown-provider-token"
CONTROL_TOKEN = "shutdown-control-token"


class Served:
    """One requestor node and its server on a fixed port, startable again on the same port."""

    def __init__(self, loop: Loop, data_dir: Path, port: int) -> None:
        self.loop = loop
        self.node = RequestorNode(data_dir, RequestorConfig(reap_interval_s=3600))
        loop.run(self.node.start(), "requestor start")
        self.server: RequestorServer
        self.server, _ = loop.run(
            serve_requestor(
                self.node, HOST, port, provider_token=PROVIDER_TOKEN, control_token=CONTROL_TOKEN
            ),
            "serve",
        )

    def stop(self) -> None:
        if not self.server.shutting_down:
            self.server.close()
        self.loop.run(self.server.wait_closed(), "server close")
        self.loop.run(self.node.stop(), "requestor stop")


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    try:
        yield running
    finally:
        running.close()


def test_existing_connections_get_unavailable_after_close(loop: Loop, tmp_path: Path) -> None:
    port = free_port(HOST)
    served = Served(loop, tmp_path / "requestor", port)
    provider = RawProvider(loop, HOST, port, PROVIDER_TOKEN, "provider-before-close")
    late = RawProvider(loop, HOST, port, PROVIDER_TOKEN, "provider-late")
    control = Control(loop, HOST, port, CONTROL_TOKEN)
    try:
        assert provider.join().status is Status.OK
        # Connected, refused for its own reasons: proves the connection was accepted before the close.
        assert late.request_work().status is Status.FAILED_PRECONDITION
        assert control.status("no-such-task").status is Status.NOT_FOUND

        served.server.close()

        # The connections are still open (wait_closed has not run), yet nothing reaches the node.
        for reply in (late.join(), provider.request_work(), provider.heartbeat([]), control.status("x")):
            assert reply.status is Status.UNAVAILABLE, reply
            assert reply.details == "the requestor is shutting down"
        served.stop()

        # Shut: the connections are closed too; the old channels find nothing to dial.
        for reply in (late.join(), control.status("x")):
            assert reply.status is Status.UNAVAILABLE, reply
            assert reply.details != "the requestor is shutting down"

        # A requestor started again on the same port is reached over the same channels, never re-dialled.
        served = Served(loop, tmp_path / "requestor", port)
        wait_until(lambda: late.join().status is Status.OK, "the old channel reaching the new requestor")
        assert control.status("no-such-task").status is Status.NOT_FOUND
    finally:
        provider.close()
        late.close()
        control.close()
        served.stop()
