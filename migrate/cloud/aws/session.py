"""boto3 sessions and the translation of botocore errors into the project's error tree."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.loaders

from migrate.errors import CredentialsError, ProviderError

_RETRYABLE_CODES = {
    "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError",
    "PriorRequestNotComplete", "ResourceInUseException", "SlowDown", "ProvisionedThroughputExceededException",
}
_CREDENTIAL_CODES = {
    "AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
    "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch", "AuthFailure", "UnauthorizedOperation",
}
_CLIENT_CONFIG = botocore.config.Config(retries={"max_attempts": 5, "mode": "standard"},
                                       connect_timeout=5, read_timeout=30)


_LOADER: Any = None


def make_session(region: str, profile: str | None = None) -> boto3.Session:
    """A session for one account and region. Endpoints come from the standard AWS_ENDPOINT_URL* variables."""
    global _LOADER
    with aws_errors("creating an AWS session"):
        session = boto3.Session(region_name=region, profile_name=profile)
        # Service models are read-only data: one loader, with its cache, for every session of this process
        # (each new session read them again, 0.06 s apiece, and a plan makes several).
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        session._session.register_component("data_loader", _LOADER)
        return session


def client(session: boto3.Session, service: str, endpoint_url: str | None = None) -> Any:
    with aws_errors(f"creating the {service} client"):
        # Through Any: boto3-stubs, when installed, types client() per service literal.
        factory: Any = session.client
        return factory(service, endpoint_url=endpoint_url, config=_CLIENT_CONFIG)


@contextmanager
def aws_errors(doing: str, where: str | None = None) -> Iterator[None]:
    """Turn botocore exceptions into CredentialsError / ProviderError(retryable=...)."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError as e:
        raise CredentialsError(
            f"no AWS credentials while {doing}", where=where,
            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or configure aws.profile",
        ) from e
    except botocore.exceptions.ProfileNotFound as e:
        raise CredentialsError(f"AWS profile not found while {doing}: {e}", where=where,
                               hint="check aws.profile in migrate.yaml and ~/.aws/config") from e
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError) as e:
        raise ProviderError(f"AWS endpoint unreachable while {doing}: {e}", where=where,
                            hint="check the network, the region and any endpoint override", retryable=True) from e
    except botocore.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        code, message = str(err.get("Code", "")), str(err.get("Message", ""))
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _CREDENTIAL_CODES:
            raise CredentialsError(f"AWS refused the credentials while {doing}: {code}: {message}", where=where,
                                   hint="check the role or user has the needed permissions") from e
        retryable = code in _RETRYABLE_CODES or status >= 500 or status == 429
        raise ProviderError(f"AWS error while {doing}: {code}: {message}", where=where, retryable=retryable) from e
    except botocore.exceptions.BotoCoreError as e:
        raise ProviderError(f"AWS SDK error while {doing}: {e}", where=where) from e


def error_code(e: BaseException) -> str:
    """The AWS error code behind a wrapped ProviderError, or ''."""
    cause = e.__cause__
    if isinstance(cause, botocore.exceptions.ClientError):
        return str(cause.response.get("Error", {}).get("Code", ""))
    return ""
