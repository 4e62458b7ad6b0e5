"""Google credentials through google-auth, without gcloud."""

from __future__ import annotations

import calendar
import time
from typing import Any

from migrate.errors import CredentialsError

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def credentials(endpoint: str | None = None) -> Any:
    """Application default credentials; anonymous ones for a plain-http emulator endpoint.

    Google's own emulators (storage, pubsub, …) are reached without credentials the
    same way, so an ``http://`` endpoint is the one signal used, not a sandbox flag.
    """
    if endpoint and endpoint.startswith("http://"):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    import google.auth
    import google.auth.exceptions

    try:
        creds, _ = google.auth.default(scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError as e:
        raise CredentialsError("no Google application default credentials",
                               hint="set GOOGLE_APPLICATION_CREDENTIALS or run on a machine with a "
                               "service account") from e
    return creds


def access_token() -> tuple[str, int]:
    import google.auth.exceptions
    import google.auth.transport.requests

    creds = credentials()
    try:
        creds.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as e:
        raise CredentialsError(f"cannot refresh the Google access token: {e}",
                               hint="check the service account and its roles") from e
    expiry = getattr(creds, "expiry", None)
    # google-auth keeps expiry as a naive UTC datetime.
    seconds = int(calendar.timegm(expiry.utctimetuple()) - time.time()) if expiry else 3000
    return str(creds.token), max(seconds, 60)
