"""API Gateway v2 (HTTP APIs): the temporary gateway and the production API's integration switch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from migrate.cloud.aws.session import aws_errors, client, error_code
from migrate.errors import ProviderError

PROXY_ROUTE = "ANY /{proxy+}"
MANAGED_TAG = "migrate:managed-by"


@dataclass(frozen=True)
class HttpApi:
    api_id: str
    name: str
    endpoint: str
    tags: dict[str, str]


def proxy_uri(hostname: str, scheme: str = "http") -> str:
    """The HTTP_PROXY integration URI for a load balancer: the greedy path is passed on."""
    return f"{scheme}://{hostname}/{{proxy}}"


class ApiGateway:
    def __init__(self, session: boto3.Session, endpoint_url: str | None = None) -> None:
        self.api = client(session, "apigatewayv2", endpoint_url)

    def _apis(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        with aws_errors("listing HTTP APIs"):
            while True:
                resp = self.api.get_apis(**({"NextToken": token} if token else {}))
                out += resp.get("Items", [])
                token = resp.get("NextToken")
                if not token:
                    return out

    def find(self, name: str) -> list[HttpApi]:
        return [HttpApi(str(a["ApiId"]), str(a["Name"]), str(a.get("ApiEndpoint", "")), dict(a.get("Tags") or {}))
                for a in self._apis() if a.get("Name") == name and a.get("ProtocolType", "HTTP") == "HTTP"]

    def get(self, api_id: str) -> HttpApi | None:
        try:
            with aws_errors("reading the HTTP API", where=f"api {api_id}"):
                a = self.api.get_api(ApiId=api_id)
        except ProviderError as e:
            if error_code(e) == "NotFoundException":
                return None
            raise
        return HttpApi(str(a["ApiId"]), str(a["Name"]), str(a.get("ApiEndpoint", "")), dict(a.get("Tags") or {}))

    def is_complete(self, api_id: str) -> bool:
        """Route ``ANY /{proxy+}`` on an HTTP_PROXY integration, and an auto-deployed ``$default`` stage."""
        with aws_errors("reading the HTTP API's routes", where=f"api {api_id}"):
            routes = self.api.get_routes(ApiId=api_id).get("Items", [])
            stages = self.api.get_stages(ApiId=api_id).get("Items", [])
        proxied = any(r.get("RouteKey") == PROXY_ROUTE and str(r.get("Target", "")).startswith("integrations/")
                      for r in routes)
        return proxied and any(s.get("StageName") == "$default" and s.get("AutoDeploy") for s in stages)

    def create_proxy_api(self, name: str, uri: str, tags: dict[str, str]) -> HttpApi:
        """An HTTP API that proxies everything to ``uri``. Each call creates; callers check ``find`` first."""
        with aws_errors("creating the temporary HTTP API", where=f"api {name}"):
            a = self.api.create_api(Name=name, ProtocolType="HTTP", Tags={**tags, MANAGED_TAG: "migrate"})
            api_id = str(a["ApiId"])
            integ = self.api.create_integration(ApiId=api_id, IntegrationType="HTTP_PROXY", IntegrationUri=uri,
                                                IntegrationMethod="ANY", PayloadFormatVersion="1.0")
            self.api.create_route(ApiId=api_id, RouteKey=PROXY_ROUTE,
                                  Target=f"integrations/{integ['IntegrationId']}")
            self.api.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
        found = self.get(api_id)
        assert found is not None
        return found

    def delete(self, api_id: str) -> bool:
        """Delete an API; False when it was already gone (safe twice)."""
        try:
            with aws_errors("deleting the HTTP API", where=f"api {api_id}"):
                self.api.delete_api(ApiId=api_id)
        except ProviderError as e:
            if error_code(e) == "NotFoundException":
                return False
            raise
        return True

    def proxy_integrations(self, api_id: str) -> list[dict[str, Any]]:
        with aws_errors("reading the API's integrations", where=f"api {api_id}"):
            items = self.api.get_integrations(ApiId=api_id).get("Items", [])
        return [i for i in items if i.get("IntegrationType") == "HTTP_PROXY"]

    def integration_uri(self, api_id: str) -> str:
        items = self.proxy_integrations(api_id)
        if not items:
            raise ProviderError("the API has no HTTP_PROXY integration", where=f"api {api_id}",
                                hint="the gateway router switches an HTTP_PROXY integration; check traffic.api_id")
        return str(items[0]["IntegrationUri"])

    def set_integration_uri(self, api_id: str, uri: str) -> None:
        """Point every HTTP_PROXY integration at ``uri``; one call each, effective at once on HTTP APIs."""
        for item in self.proxy_integrations(api_id):
            if item.get("IntegrationUri") != uri:
                with aws_errors("switching the API's integration", where=f"api {api_id}"):
                    self.api.update_integration(ApiId=api_id, IntegrationId=item["IntegrationId"],
                                                IntegrationUri=uri)
