"""GCS: gcp-storage-emulator in this process (a thread), in memory, for the GCS state backend.

Clients use it through ``STORAGE_EMULATOR_HOST`` (google-cloud-storage honours it); terraform >= 1.11 through
``storage_custom_endpoint = "<url>/storage/v1/"`` with ``access_token = "dummy"``.

Gap worked around: the emulator ignores generation preconditions, yet the GCS backend's lock is "create only
if absent" (``ifGenerationMatch=0``) and unlock deletes one generation. A shim on the upload and delete
handlers answers 412 when ``ifGenerationMatch`` does not hold, as GCS does.
"""

from __future__ import annotations

import logging
import socket
import threading
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server as gcs_server
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects
from gcp_storage_emulator.storage import Storage

STATE_BUCKET = "sandbox-tfstate"
_precondition = threading.local()


class PreconditionFailed(Exception):
    pass


def _free_port() -> int:
    # The emulator wants a port number up front; a bound-then-closed socket on loopback gives a free one.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check(storage: Storage, bucket: str, name: str) -> None:
    want = getattr(_precondition, "generation", None)
    if want is None:
        return
    try:
        current = str(storage.get_file_obj(bucket, name).get("generation"))
    except NotFound:
        current = "0"
    if current != want:
        raise PreconditionFailed(f"At least one of the pre-conditions you specified did not hold "
                                 f"(ifGenerationMatch={want}, generation={current}).")


def _guarded(handler: Any) -> Any:
    def wrapper(request: Any, response: Any, storage: Storage, *args: Any, **kwargs: Any) -> Any:
        want = (request.query.get("ifGenerationMatch") or [None])[0]
        _precondition.generation = want
        try:
            if want is not None and "object_id" in request.params:  # delete: the name is in the path
                _check(storage, request.params["bucket_name"], request.params["object_id"])
            return handler(request, response, storage, *args, **kwargs)
        except PreconditionFailed as e:
            response.status = HTTPStatus.PRECONDITION_FAILED
            response.json({"error": {"code": 412, "message": str(e), "errors": [
                {"domain": "global", "reason": "conditionNotMet", "message": str(e)}]}})
            return None
        finally:
            _precondition.generation = None

    wrapper.__wrapped__ = handler  # type: ignore[attr-defined]
    return wrapper


def _install_shim() -> None:
    if getattr(Storage.create_file, "_sandbox_shim", False):
        return
    create_file = Storage.create_file

    def checked_create(self: Storage, bucket_name: str, file_name: str, *args: Any, **kwargs: Any) -> Any:
        _check(self, bucket_name, file_name)
        return create_file(self, bucket_name, file_name, *args, **kwargs)

    checked_create._sandbox_shim = True  # type: ignore[attr-defined]
    Storage.create_file = checked_create
    wrapped = {objects.insert: _guarded(objects.insert), objects.delete: _guarded(objects.delete)}
    handlers = []
    for pattern, methods in gcs_server.HANDLERS:
        handlers.append((pattern, {m: wrapped.get(h, h) for m, h in methods.items()}))
    gcs_server.HANDLERS = tuple(handlers)
    gcs_server.objects.insert = wrapped[objects.insert]  # the router's fallback for POST .../o?uploadType=


class Gcs:
    def __init__(self) -> None:
        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        _install_shim()
        self.port = _free_port()
        self._server = gcs_server.create_server("127.0.0.1", self.port, in_memory=True, default_bucket=STATE_BUCKET)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gcs:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
