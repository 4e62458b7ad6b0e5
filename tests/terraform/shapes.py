"""State and configuration fixtures in the shapes of public examples, written here (no third-party state
is copied): terraform-aws-eks `examples/eks-managed-node-group` (two clusters in one root), an EKS
Blueprints v4 root (a cluster inside a nested module, add-ons through helm/kubernetes providers), a
Terraform 0.12 root on terraform-aws-eks v12 (legacy provider strings, no `dependencies`), and the google
provider's GKE example with a node service account and its IAM bindings.

Each builder returns (state dict, {file name: HCL text}) and the exact sets the classifier must produce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AWS = 'provider["registry.terraform.io/hashicorp/aws"]'
GOOGLE = 'provider["registry.terraform.io/hashicorp/google"]'
KUBERNETES = 'provider["registry.terraform.io/hashicorp/kubernetes"]'
HELM = 'provider["registry.terraform.io/hashicorp/helm"]'
TIME = 'provider["registry.terraform.io/hashicorp/time"]'
TLS = 'provider["registry.terraform.io/hashicorp/tls"]'


@dataclass
class StateShape:
    terraform_version: str = "1.9.8"
    resources: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rtype: str, name: str, *, module: str = "", mode: str = "managed", provider: str = AWS,
            keys: list[Any] | None = None, attrs: dict[str, Any] | None = None, deps: list[str] | None = None,
            per_key: dict[Any, dict[str, Any]] | None = None) -> None:
        """One resource; ``keys`` None: a single unkeyed instance; ints: count; strings: for_each."""
        insts = []
        for key in keys if keys is not None else [None]:
            a = {"id": f"{rtype}-{name}-{key}" if key is not None else f"{rtype}-{name}", **(attrs or {}),
                 **((per_key or {}).get(key, {}))}
            inst: dict[str, Any] = {"schema_version": 0, "attributes": a, "sensitive_attributes": []}
            if key is not None:
                inst = {"index_key": key, **inst}
            if deps:
                inst["dependencies"] = sorted(deps)
            insts.append(inst)
        r: dict[str, Any] = {"module": module} if module else {}
        each = None if keys is None else ("list" if keys and isinstance(keys[0], int) else "map")
        r.update({"mode": mode, "type": rtype, "name": name, "provider": provider})
        if each:
            r["each"] = each
        r["instances"] = insts
        self.resources.append(r)

    def state(self) -> dict[str, Any]:
        return {"version": 4, "terraform_version": self.terraform_version, "serial": 7,
                "lineage": "3f1c0e5a-0000-4000-8000-000000000001", "outputs": {},
                "resources": self.resources, "check_results": None}


def _addresses(resources: list[dict[str, Any]], prefix: str = "") -> list[str]:
    out = []
    for r in resources:
        mod = r.get("module", "")
        if prefix and not mod.startswith(prefix):
            continue
        base = f"{mod + '.' if mod else ''}{'data.' if r['mode'] == 'data' else ''}{r['type']}.{r['name']}"
        for inst in r["instances"]:
            k = inst.get("index_key")
            out.append(base if k is None else f"{base}[{k}]" if isinstance(k, int) else f'{base}["{k}"]')
    return out


@dataclass
class Shape:
    state: dict[str, Any]
    files: dict[str, str]
    cluster_name: str
    cluster: set[str]
    shared: set[str]


# ---- terraform-aws-modules/vpc and terraform-aws-modules/eks (v20) -----------------------------------------


def vpc_module(st: StateShape, mod: str = "module.vpc", azs: int = 3) -> None:
    v = f"{mod}.aws_vpc.this"
    st.add("aws_vpc", "this", module=mod, keys=[0], attrs={"cidr_block": "10.0.0.0/16"})
    st.add("aws_default_security_group", "this", module=mod, keys=[0], deps=[v])
    st.add("aws_internet_gateway", "this", module=mod, keys=[0], deps=[v])
    for tier, tags in (("private", {"kubernetes.io/role/internal-elb": "1"}),
                       ("public", {"kubernetes.io/role/elb": "1"}), ("intra", {})):
        st.add("aws_subnet", tier, module=mod, keys=list(range(azs)), attrs={"tags": tags}, deps=[v])
    st.add("aws_route_table", "private", module=mod, keys=[0], deps=[v])
    st.add("aws_route_table", "public", module=mod, keys=[0], deps=[v])
    st.add("aws_route_table_association", "private", module=mod, keys=list(range(azs)),
           deps=[f"{mod}.aws_route_table.private", f"{mod}.aws_subnet.private", v])
    st.add("aws_route_table_association", "public", module=mod, keys=list(range(azs)),
           deps=[f"{mod}.aws_route_table.public", f"{mod}.aws_subnet.public", v])
    st.add("aws_eip", "nat", module=mod, keys=[0], deps=[f"{mod}.aws_internet_gateway.this", v])
    st.add("aws_nat_gateway", "this", module=mod, keys=[0],
           deps=[f"{mod}.aws_eip.nat", f"{mod}.aws_internet_gateway.this", f"{mod}.aws_subnet.public", v])
    st.add("aws_route", "private_nat_gateway", module=mod, keys=[0],
           deps=[f"{mod}.aws_nat_gateway.this", f"{mod}.aws_route_table.private", v])


def eks_module(st: StateShape, mod: str, name: str, node_groups: list[str], *, vpc: str = "module.vpc") -> None:
    """The resources terraform-aws-eks v20 writes for one cluster, with the dependencies Terraform records
    (transitive, data sources included)."""
    vpc_deps = [f"{vpc}.aws_subnet.private", f"{vpc}.aws_vpc.this"]
    data = [f"{mod}.data.aws_partition.current", f"{mod}.data.aws_caller_identity.current",
            f"{mod}.data.aws_iam_session_context.current"]
    for d in ("aws_partition", "aws_caller_identity", "aws_iam_session_context"):
        st.add(d, "current", module=mod, mode="data")
    st.add("aws_iam_policy_document", "assume_role_policy", module=mod, mode="data", keys=[0])
    role = f"{mod}.aws_iam_role.this"
    st.add("aws_iam_role", "this", module=mod, keys=[0], attrs={"name": f"{name}-cluster-20241101"},
           deps=[*data, f"{mod}.data.aws_iam_policy_document.assume_role_policy"])
    st.add("aws_iam_role_policy_attachment", "this", module=mod,
           keys=["AmazonEKSClusterPolicy", "AmazonEKSVPCResourceController"], deps=[role, *data])
    st.add("aws_cloudwatch_log_group", "this", module=mod, keys=[0], attrs={"name": f"/aws/eks/{name}/cluster"})
    kms = f"{mod}.module.kms"
    st.add("aws_kms_key", "this", module=kms, keys=[0], deps=[role, *data])
    st.add("aws_kms_alias", "this", module=kms, keys=["cluster"], attrs={"name": f"alias/eks/{name}"},
           deps=[f"{kms}.aws_kms_key.this", role, *data])
    sg_c, sg_n = f"{mod}.aws_security_group.cluster", f"{mod}.aws_security_group.node"
    st.add("aws_security_group", "cluster", module=mod, keys=[0], attrs={"name": f"{name}-cluster"},
           deps=[f"{vpc}.aws_vpc.this"])
    st.add("aws_security_group", "node", module=mod, keys=[0], attrs={"name": f"{name}-node"},
           deps=[f"{vpc}.aws_vpc.this"])
    st.add("aws_security_group_rule", "cluster", module=mod, keys=["ingress_nodes_443"],
           deps=[sg_c, sg_n, f"{vpc}.aws_vpc.this"])
    st.add("aws_security_group_rule", "node", module=mod,
           keys=["ingress_cluster_443", "egress_all", "ingress_self_all"], deps=[sg_c, sg_n, f"{vpc}.aws_vpc.this"])
    pre = [f"{mod}.aws_cloudwatch_log_group.this", role, f"{mod}.aws_iam_role_policy_attachment.this",
           sg_c, sg_n, f"{mod}.aws_security_group_rule.cluster", f"{mod}.aws_security_group_rule.node",
           f"{kms}.aws_kms_key.this", *vpc_deps, *data]
    cl = f"{mod}.aws_eks_cluster.this"
    st.add("aws_eks_cluster", "this", module=mod, keys=[0], attrs={"name": name, "version": "1.31",
                                                                 "endpoint": f"https://{name}.eks.example"},
           deps=pre)
    st.add("tls_certificate", "this", module=mod, mode="data", keys=[0], provider=TLS)
    st.add("aws_iam_openid_connect_provider", "oidc_provider", module=mod, keys=[0],
           deps=[cl, f"{mod}.data.tls_certificate.this", *pre])
    st.add("time_sleep", "this", module=mod, keys=[0], provider=TIME, deps=[cl, *pre])
    st.add("aws_eks_access_entry", "this", module=mod, keys=["cluster_creator"], deps=[cl, *pre])
    st.add("aws_eks_access_policy_association", "this", module=mod, keys=["cluster_creator_admin"],
           deps=[cl, f"{mod}.aws_eks_access_entry.this", *pre])
    for ng in node_groups:
        ngm = f'{mod}.module.eks_managed_node_group["{ng}"]'
        nrole = f"{ngm}.aws_iam_role.this"
        st.add("aws_iam_policy_document", "assume_role_policy", module=ngm, mode="data", keys=[0])
        st.add("aws_iam_role", "this", module=ngm, keys=[0], attrs={"name": f"{ng}-eks-node-group-2024"},
               deps=[f"{ngm}.data.aws_iam_policy_document.assume_role_policy"])
        st.add("aws_iam_role_policy_attachment", "this", module=ngm,
               keys=["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy"],
               deps=[nrole])
        st.add("aws_launch_template", "this", module=ngm, keys=[0], deps=[cl, sg_n, *pre, f"{mod}.time_sleep.this"])
        st.add("aws_eks_node_group", "this", module=ngm, keys=[0], attrs={"cluster_name": name},
               deps=[cl, f"{ngm}.aws_launch_template.this", nrole, f"{ngm}.aws_iam_role_policy_attachment.this",
                     f"{mod}.time_sleep.this", *pre])
    st.add("aws_eks_addon", "this", module=mod, keys=["coredns", "kube-proxy", "vpc-cni", "eks-pod-identity-agent"],
           attrs={"cluster_name": name},
           deps=[cl, f"{mod}.module.eks_managed_node_group.aws_eks_node_group.this", *pre])


EKS_NODE_GROUP_TF = """
provider "aws" {
  region = local.region
}

data "aws_availability_zones" "available" {
  # Exclude local zones
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  name            = "ex-eks-mng"
  cluster_version = "1.31"
  region          = "eu-west-1"
  vpc_cidr        = "10.0.0.0/16"
  azs             = slice(data.aws_availability_zones.available.names, 0, 3)
  tags = {
    Example    = local.name
    GithubRepo = "terraform-aws-eks"
  }
}

module "eks_bottlerocket" {
  source = "SOURCE"

  cluster_name    = "${local.name}-bottlerocket"
  cluster_version = local.cluster_version

  cluster_endpoint_public_access           = true
  enable_cluster_creator_admin_permissions = true

  cluster_addons = {
    coredns                = {}
    eks-pod-identity-agent = {}
    kube-proxy             = {}
    vpc-cni                = {}
  }

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  eks_managed_node_groups = {
    example = {
      ami_type       = "BOTTLEROCKET_x86_64"
      instance_types = ["m6i.large"]
      min_size       = 2
      max_size       = 5
      desired_size   = 2
    }
  }

  tags = local.tags
}

module "eks_al2023" {
  source = "SOURCE"

  cluster_name    = "${local.name}-al2023"
  cluster_version = local.cluster_version

  cluster_endpoint_public_access           = true
  enable_cluster_creator_admin_permissions = true

  cluster_addons = {
    coredns                = {}
    eks-pod-identity-agent = {}
    kube-proxy             = {}
    vpc-cni                = {}
  }

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  eks_managed_node_groups = {
    example = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = ["m6i.large"]
      min_size       = 2
      max_size       = 5
      desired_size   = 2
    }
  }

  tags = local.tags
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.0"

  name = local.name
  cidr = local.vpc_cidr

  azs             = local.azs
  private_subnets = [for k, v in local.azs : cidrsubnet(local.vpc_cidr, 4, k)]
  public_subnets  = [for k, v in local.azs : cidrsubnet(local.vpc_cidr, 8, k + 48)]
  intra_subnets   = [for k, v in local.azs : cidrsubnet(local.vpc_cidr, 8, k + 52)]

  enable_nat_gateway = true
  single_nat_gateway = true

  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }

  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = 1
  }

  tags = local.tags
}
"""


def two_clusters(source: str = "terraform-aws-modules/eks/aws") -> Shape:
    """examples/eks-managed-node-group: two clusters and one VPC in one root. ``source``: the registry
    source a user writes, or the example's own ``../..`` (then no module is recognised and the graph alone
    must find the same sets)."""
    st = StateShape()
    st.add("aws_availability_zones", "available", mode="data")
    eks_module(st, "module.eks_al2023", "ex-eks-mng-al2023", ["example"])
    eks_module(st, "module.eks_bottlerocket", "ex-eks-mng-bottlerocket", ["example"])
    vpc_module(st)
    state = st.state()
    every = set(_addresses(state["resources"]))
    cluster = set(_addresses(state["resources"], "module.eks_al2023"))
    tf = EKS_NODE_GROUP_TF.replace('"SOURCE"', f'"{source}"')
    if source == "terraform-aws-modules/eks/aws":
        tf = tf.replace(f'source = "{source}"\n', f'source  = "{source}"\n  version = "~> 20.0"\n')
    return Shape(state, {"main.tf": tf}, "ex-eks-mng-al2023", cluster, every - cluster)


# ---- EKS Blueprints v4 (a cluster in a nested module, add-ons through providers) --------------------------

BLUEPRINTS_TF = """
provider "aws" {
  region = local.region
}

provider "kubernetes" {
  host                   = module.eks_blueprints.eks_cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks_blueprints.eks_cluster_certificate_authority_data)
  token                  = data.aws_eks_cluster_auth.this.token
}

provider "helm" {
  kubernetes {
    host                   = module.eks_blueprints.eks_cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks_blueprints.eks_cluster_certificate_authority_data)
    token                  = data.aws_eks_cluster_auth.this.token
  }
}

data "aws_eks_cluster_auth" "this" {
  name = module.eks_blueprints.eks_cluster_id
}

data "aws_availability_zones" "available" {}

locals {
  name     = "blueprints-prod"
  region   = "us-west-2"
  vpc_cidr = "10.0.0.0/16"
  azs      = slice(data.aws_availability_zones.available.names, 0, 3)
}

module "eks_blueprints" {
  source = "github.com/aws-ia/terraform-aws-eks-blueprints?ref=v4.32.1"

  cluster_name    = local.name
  cluster_version = "1.26"

  vpc_id             = module.vpc.vpc_id
  private_subnet_ids = module.vpc.private_subnets

  managed_node_groups = {
    mg_5 = {
      node_group_name = "managed-ondemand"
      instance_types  = ["m5.large"]
      min_size        = 2
      subnet_ids      = module.vpc.private_subnets
    }
  }
}

module "eks_blueprints_kubernetes_addons" {
  source = "github.com/aws-ia/terraform-aws-eks-blueprints//modules/kubernetes-addons?ref=v4.32.1"

  eks_cluster_id       = module.eks_blueprints.eks_cluster_id
  eks_cluster_endpoint = module.eks_blueprints.eks_cluster_endpoint
  eks_oidc_provider    = module.eks_blueprints.oidc_provider
  eks_cluster_version  = module.eks_blueprints.eks_cluster_version

  enable_aws_load_balancer_controller = true
  enable_metrics_server               = true
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 3.0"

  name = local.name
  cidr = local.vpc_cidr
  azs  = local.azs

  private_subnets = [for k, v in local.azs : cidrsubnet(local.vpc_cidr, 4, k)]
  public_subnets  = [for k, v in local.azs : cidrsubnet(local.vpc_cidr, 8, k + 48)]

  enable_nat_gateway = true
  single_nat_gateway = true

  private_subnet_tags = {
    "kubernetes.io/cluster/${local.name}" = "shared"
    "kubernetes.io/role/internal-elb"     = 1
  }
}

resource "aws_route53_record" "grafana" {
  zone_id = data.aws_route53_zone.main.zone_id
  name    = "grafana.example.com"
  type    = "CNAME"
  ttl     = 300
  records = ["grafana.internal"]
}

data "aws_route53_zone" "main" {
  name = "example.com"
}
"""


def blueprints() -> Shape:
    st = StateShape(terraform_version="1.3.9")
    name = "blueprints-prod"
    st.add("aws_availability_zones", "available", mode="data")
    st.add("aws_route53_zone", "main", mode="data", attrs={"name": "example.com"})
    st.add("aws_eks_cluster_auth", "this", mode="data", attrs={"id": name, "name": name, "token": "k8s-aws-v1.SECRET"})
    st.add("aws_route53_record", "grafana", deps=["data.aws_route53_zone.main"])
    bp = "module.eks_blueprints"
    eks = f"{bp}.module.aws_eks"
    vpc = ["module.vpc.aws_subnet.private", "module.vpc.aws_vpc.this"]
    st.add("aws_partition", "current", module=bp, mode="data")
    st.add("aws_iam_role", "this", module=eks, keys=[0], attrs={"name": f"{name}-cluster-role"})
    st.add("aws_iam_role_policy_attachment", "this", module=eks, keys=["AmazonEKSClusterPolicy"],
           deps=[f"{eks}.aws_iam_role.this"])
    st.add("aws_security_group", "cluster", module=eks, keys=[0], deps=["module.vpc.aws_vpc.this"])
    st.add("aws_kms_key", "this", module=f"{bp}.module.kms[0]", deps=[f"{bp}.data.aws_partition.current"])
    cluster_deps = [f"{eks}.aws_iam_role.this", f"{eks}.aws_iam_role_policy_attachment.this",
                    f"{eks}.aws_security_group.cluster", f"{bp}.module.kms.aws_kms_key.this", *vpc]
    cl = f"{eks}.aws_eks_cluster.this"
    st.add("aws_eks_cluster", "this", module=eks, keys=[0], attrs={"name": name, "version": "1.26"}, deps=cluster_deps)
    st.add("aws_iam_openid_connect_provider", "oidc_provider", module=eks, keys=[0], deps=[cl, *cluster_deps])
    mng = f'{bp}.module.aws_eks_managed_node_groups["mg_5"]'
    st.add("aws_iam_role", "managed_ng", module=mng, keys=[0], attrs={"name": f"{name}-managed-ondemand"})
    st.add("aws_eks_node_group", "managed_ng", module=mng, attrs={"cluster_name": name},
           deps=[cl, f"{mng}.aws_iam_role.managed_ng", *cluster_deps])
    st.add("kubernetes_config_map", "aws_auth", module=bp, keys=[0], provider=KUBERNETES, deps=[cl, *cluster_deps])
    add = "module.eks_blueprints_kubernetes_addons"
    lbc = f"{add}.module.aws_load_balancer_controller[0]"
    st.add("aws_iam_policy", "aws_load_balancer_controller", module=lbc, attrs={"name": f"{name}-lb-irsa"},
           deps=[cl, *cluster_deps])
    st.add("aws_iam_role", "irsa", module=f"{lbc}.module.helm_addon.module.irsa[0]", keys=[0],
           deps=[f"{eks}.aws_iam_openid_connect_provider.oidc_provider", cl, *cluster_deps])
    st.add("kubernetes_service_account_v1", "irsa", module=f"{lbc}.module.helm_addon.module.irsa[0]", keys=[0],
           provider=KUBERNETES, deps=[f"{lbc}.module.helm_addon.module.irsa.aws_iam_role.irsa"])
    st.add("helm_release", "addon", module=f"{lbc}.module.helm_addon", keys=[0], provider=HELM)
    st.add("helm_release", "addon", module=f"{add}.module.metrics_server[0].module.helm_addon", keys=[0],
           provider=HELM)
    vpc_module(st)
    state = st.state()
    every = set(_addresses(state["resources"]))
    cluster = {a for a in every if a.startswith((bp, add))} | {"data.aws_eks_cluster_auth.this"}
    return Shape(state, {"main.tf": BLUEPRINTS_TF}, name, cluster, every - cluster)


# ---- Terraform 0.12, terraform-aws-eks v12: legacy provider strings, no dependencies -----------------------

LEGACY_TF = """
provider "aws" {
  version = ">= 2.28.1"
  region  = var.region
}

data "aws_eks_cluster" "cluster" {
  name = module.eks.cluster_id
}

data "aws_eks_cluster_auth" "cluster" {
  name = module.eks.cluster_id
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.cluster.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.cluster.certificate_authority.0.data)
  token                  = data.aws_eks_cluster_auth.cluster.token
  load_config_file       = false
  version                = "~> 1.11"
}

provider "k8s" {
  alias                  = "eks"
  host                   = data.aws_eks_cluster.cluster.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.cluster.certificate_authority.0.data)
  token                  = data.aws_eks_cluster_auth.cluster.token
  load_config_file       = false
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "2.47.0"

  name            = "legacy-vpc"
  cidr            = "10.0.0.0/16"
  azs             = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  private_subnets = ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]
  public_subnets  = ["10.0.4.0/24", "10.0.5.0/24", "10.0.6.0/24"]
}

module "eks" {
  source          = "terraform-aws-modules/eks/aws"
  version         = "12.2.0"
  cluster_name    = var.cluster_name
  cluster_version = "1.17"
  subnets         = module.vpc.private_subnets
  vpc_id          = module.vpc.vpc_id

  worker_groups = [
    {
      name                 = "worker-group-1"
      instance_type        = "t3.small"
      asg_desired_capacity = 2
    },
  ]
}

resource "aws_security_group" "bastion" {
  name_prefix = "bastion"
  vpc_id      = module.vpc.vpc_id
}

resource "aws_instance" "bastion" {
  ami                    = var.bastion_ami
  instance_type          = "t3.micro"
  subnet_id              = module.vpc.public_subnets[0]
  vpc_security_group_ids = [aws_security_group.bastion.id]
}

resource "aws_security_group_rule" "bastion_to_api" {
  type                     = "ingress"
  from_port                = 443
  to_port                  = 443
  protocol                 = "tcp"
  security_group_id        = module.eks.cluster_security_group_id
  source_security_group_id = aws_security_group.bastion.id
}

resource "aws_route53_record" "api" {
  zone_id = var.zone_id
  name    = "k8s-api.example.com"
  type    = "CNAME"
  ttl     = 60
  records = [replace(data.aws_eks_cluster.cluster.endpoint, "https://", "")]
}

resource "k8s_manifest" "crd" {
  provider = k8s.eks
  content  = file("${path.module}/crd.yaml")
}
"""


def legacy_012() -> Shape:
    st = StateShape(terraform_version="0.12.29")
    name = "legacy-prod"
    p_aws = "provider.aws"
    st.add("aws_eks_cluster", "cluster", mode="data", provider=p_aws,
           attrs={"id": name, "name": name, "endpoint": "https://legacy.eks.example"})
    st.add("aws_eks_cluster_auth", "cluster", mode="data", provider=p_aws, attrs={"id": name, "token": "SECRET"})
    st.add("aws_security_group", "bastion", provider=p_aws)
    st.add("aws_instance", "bastion", provider=p_aws)
    st.add("aws_security_group_rule", "bastion_to_api", provider=p_aws)
    st.add("aws_route53_record", "api", provider=p_aws)
    st.add("k8s_manifest", "crd", provider="provider.k8s.eks")
    for rtype, rname, keys in (("aws_vpc", "this", [0]), ("aws_subnet", "private", [0, 1, 2]),
                               ("aws_subnet", "public", [0, 1, 2]), ("aws_internet_gateway", "this", [0]),
                               ("aws_route_table", "private", [0]),
                               ("aws_route_table_association", "private", [0, 1, 2])):
        st.add(rtype, rname, module="module.vpc", keys=keys, provider=p_aws)
    for rtype, rname, provider in (("aws_eks_cluster", "this", p_aws), ("aws_iam_role", "cluster", p_aws),
                                   ("aws_iam_role_policy_attachment", "cluster_AmazonEKSClusterPolicy", p_aws),
                                   ("aws_security_group", "cluster", p_aws), ("aws_security_group", "workers", p_aws),
                                   ("aws_launch_configuration", "workers", p_aws),
                                   ("aws_autoscaling_group", "workers", p_aws),
                                   ("kubernetes_config_map", "aws_auth", "provider.kubernetes"),
                                   ("null_resource", "wait_for_cluster", "provider.null"),
                                   ("local_file", "kubeconfig", "provider.local")):
        attrs = {"name": name} if rtype == "aws_eks_cluster" else {}
        st.add(rtype, rname, module="module.eks", keys=[0], provider=provider, attrs=attrs)
    state = st.state()
    for r in state["resources"]:  # 0.12 state objects carry no dependencies and no sensitive_attributes
        for inst in r["instances"]:
            inst.pop("sensitive_attributes", None)
    every = set(_addresses(state["resources"]))
    cluster = {a for a in every if a.startswith("module.eks.")} | {
        "data.aws_eks_cluster.cluster", "data.aws_eks_cluster_auth.cluster", "aws_security_group_rule.bastion_to_api",
        "aws_route53_record.api", "k8s_manifest.crd"}
    return Shape(state, {"main.tf": LEGACY_TF, "variables.tf": 'variable "region" {}\nvariable "cluster_name" {}\n'
                         'variable "zone_id" {}\nvariable "bastion_ami" {}\n'}, name, cluster, every - cluster)


# ---- GKE: the google provider's example, with a node service account --------------------------------------

GKE_TF = """
resource "google_project_service" "container" {
  service            = "container.googleapis.com"
  disable_on_destroy = false
}

resource "google_compute_network" "vpc" {
  name                    = "gke-vpc"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "subnet" {
  name          = "gke-subnet"
  region        = var.region
  network       = google_compute_network.vpc.name
  ip_cidr_range = "10.10.0.0/24"
}

resource "google_service_account" "default" {
  account_id   = "gke-primary-nodes"
  display_name = "GKE primary node pool"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset(["roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/artifactregistry.reader"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.default.email}"
}

resource "google_container_cluster" "primary" {
  name     = "gke-primary"
  location = var.region

  remove_default_node_pool = true
  initial_node_count       = 1

  network    = google_compute_network.vpc.name
  subnetwork = google_compute_subnetwork.subnet.name

  depends_on = [google_project_service.container]
}

resource "google_container_node_pool" "primary_nodes" {
  name       = "primary-node-pool"
  location   = var.region
  cluster    = google_container_cluster.primary.name
  node_count = 2

  node_config {
    machine_type    = "e2-standard-4"
    service_account = google_service_account.default.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
  }
}

resource "google_compute_router" "router" {
  name    = "gke-router"
  region  = var.region
  network = google_compute_network.vpc.id
}

resource "google_compute_router_nat" "nat" {
  name                               = "gke-nat"
  router                             = google_compute_router.router.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
}

data "google_client_config" "default" {}

provider "kubernetes" {
  host                   = "https://${google_container_cluster.primary.endpoint}"
  token                  = data.google_client_config.default.access_token
  cluster_ca_certificate = base64decode(google_container_cluster.primary.master_auth[0].cluster_ca_certificate)
}

resource "kubernetes_namespace" "apps" {
  metadata {
    name = "apps"
  }
}

resource "google_dns_record_set" "apps" {
  managed_zone = "example-zone"
  name         = "apps.example.com."
  type         = "A"
  ttl          = 300
  rrdatas      = ["203.0.113.10"]
}
"""


def gke() -> Shape:
    st = StateShape(terraform_version="1.5.7")
    st.add("google_client_config", "default", mode="data", provider=GOOGLE, attrs={"access_token": "ya29.SECRET"})
    st.add("google_project_service", "container", provider=GOOGLE)
    st.add("google_compute_network", "vpc", provider=GOOGLE, attrs={"name": "gke-vpc"})
    st.add("google_compute_subnetwork", "subnet", provider=GOOGLE, deps=["google_compute_network.vpc"])
    st.add("google_service_account", "default", provider=GOOGLE, attrs={"email": "gke-primary-nodes@p.iam"})
    st.add("google_project_iam_member", "nodes", provider=GOOGLE,
           keys=["roles/artifactregistry.reader", "roles/logging.logWriter", "roles/monitoring.metricWriter"],
           deps=["google_service_account.default"])
    cl_deps = ["google_compute_network.vpc", "google_compute_subnetwork.subnet", "google_project_service.container"]
    st.add("google_container_cluster", "primary", provider=GOOGLE, attrs={"name": "gke-primary"}, deps=cl_deps)
    st.add("google_container_node_pool", "primary_nodes", provider=GOOGLE,
           deps=["google_container_cluster.primary", "google_service_account.default", *cl_deps])
    st.add("google_compute_router", "router", provider=GOOGLE, deps=["google_compute_network.vpc"])
    st.add("google_compute_router_nat", "nat", provider=GOOGLE,
           deps=["google_compute_network.vpc", "google_compute_router.router"])
    st.add("kubernetes_namespace", "apps", provider=KUBERNETES)
    st.add("google_dns_record_set", "apps", provider=GOOGLE)
    state = st.state()
    every = set(_addresses(state["resources"]))
    cluster = {"google_container_cluster.primary", "google_container_node_pool.primary_nodes",
               "google_service_account.default", 'google_project_iam_member.nodes["roles/artifactregistry.reader"]',
               'google_project_iam_member.nodes["roles/logging.logWriter"]',
               'google_project_iam_member.nodes["roles/monitoring.metricWriter"]', "kubernetes_namespace.apps",
               "data.google_client_config.default"}
    return Shape(state, {"main.tf": GKE_TF, "variables.tf": 'variable "region" {}\nvariable "project_id" {}\n'},
                 "gke-primary", cluster, every - cluster)
