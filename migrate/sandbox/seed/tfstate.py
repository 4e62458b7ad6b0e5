"""A Terraform v4 state for the sample root stack (terraform-modules/stacks/sandbox), built from the ids of
the objects the seed created in moto. Written here, not with migrate.terraform: the sandbox stands alone.

Resources are sorted by module, mode, type and name, as Terraform writes them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

AWS = 'provider["registry.terraform.io/hashicorp/aws"]'
KUBERNETES = 'provider["registry.terraform.io/hashicorp/kubernetes"]'
TERRAFORM_VERSION = "1.11.4"


@dataclass
class StateBuilder:
    serial: int = 1
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def add(self, type_: str, name: str, attributes: dict[str, Any], *, module: str | None = None,
            deps: list[str] | None = None, provider: str = AWS, mode: str = "managed",
            instances: list[tuple[Any, dict[str, Any]]] | None = None, each: str | None = None,
            sensitive: list[list[dict[str, str]]] | None = None, schema_version: int = 0) -> None:
        """One resource; `instances` [(index_key, attributes)] for count/for_each resources."""
        res: dict[str, Any] = {}
        if module:
            res["module"] = module
        res.update(mode=mode, type=type_, name=name)
        if each:
            res["each"] = each
        res["provider"] = provider
        rows = instances if instances is not None else [(None, attributes)]
        res["instances"] = []
        for key, attrs in rows:
            inst: dict[str, Any] = {}
            if key is not None:
                inst["index_key"] = key
            inst.update(schema_version=schema_version, attributes=attrs,
                        sensitive_attributes=sensitive or [], private="bnVsbA==")
            if mode == "managed":
                inst["dependencies"] = sorted(deps or [])
            res["instances"].append(inst)
        self.resources.append(res)

    def output(self, name: str, value: Any, type_: Any = "string", sensitive: bool = False) -> None:
        self.outputs[name] = {"value": value, "type": type_, **({"sensitive": True} if sensitive else {})}

    def document(self) -> dict[str, Any]:
        def key(r: dict[str, Any]) -> tuple[str, int, str, str]:
            return (r.get("module", ""), 0 if r["mode"] == "managed" else 1, r["type"], r["name"])

        return {"version": 4, "terraform_version": TERRAFORM_VERSION, "serial": self.serial, "lineage": self.lineage,
                "outputs": self.outputs, "resources": sorted(self.resources, key=key), "check_results": None}

    def dumps(self) -> bytes:
        return (json.dumps(self.document(), indent=2) + "\n").encode()
