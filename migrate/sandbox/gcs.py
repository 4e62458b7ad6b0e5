"""GCS: gcp-storage-emulator in this process (a thread), in memory, for the GCS state backend.

Clients use it through ``STORAGE_EMULATOR_HOST`` (google-cloud-storage honours it); terraform >= 1.11 through
``storage_custom_endpoint = "<url>/storage/v1/"`` with ``access_token = "dummy"``.
"""

from __future__ import annotations

import logging
import socket

from gcp_storage_emulator.server import create_server

STATE_BUCKET = "sandbox-tfstate"


def _free_port() -> int:
    # The emulator wants a port number up front; a bound-then-closed socket on loopback gives a free one.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gcs:
    def __init__(self) -> None:
        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        self.port = _free_port()
        self._server = create_server("127.0.0.1", self.port, in_memory=True, default_bucket=STATE_BUCKET)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gcs:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
