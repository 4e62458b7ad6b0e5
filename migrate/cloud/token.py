"""Exec credential plugin: ``python -m migrate.cloud.token eks --cluster NAME --region R``.

Prints an ExecCredential for kubectl and the kubernetes client. Errors go to
stderr in one line, with exit code 1, so kubectl shows them as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

from migrate.errors import MigrateError


def _credential(token: str, expires_in: int) -> str:
    expiry = (datetime.now(UTC) + timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1",
                       "spec": {}, "status": {"expirationTimestamp": expiry, "token": token}})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m migrate.cloud.token", description=__doc__)
    sub = parser.add_subparsers(dest="cloud", required=True)
    eks = sub.add_parser("eks", help="an EKS bearer token (presigned STS GetCallerIdentity)")
    eks.add_argument("--cluster", required=True)
    eks.add_argument("--region", required=True)
    eks.add_argument("--profile")
    sub.add_parser("gke", help="a Google OAuth access token from application default credentials")
    return parser


def mint(argv: list[str]) -> tuple[str, int]:
    """(token, seconds it is valid) for the plugin's arguments, in this process. MigrateError if none."""
    args = _parser().parse_args(argv)
    if args.cloud == "eks":
        from migrate.cloud.aws.session import make_session
        from migrate.cloud.aws.token import eks_token

        # EKS accepts a token for 15 minutes; kubectl refreshes at expiry, so claim 14.
        return eks_token(make_session(args.region, args.profile), args.cluster), 14 * 60
    from migrate.cloud.gcp.auth import access_token

    return access_token()


def main(argv: list[str] | None = None) -> int:
    try:
        print(_credential(*mint(sys.argv[1:] if argv is None else argv)))
    except MigrateError as e:
        print(f"migrate token: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
