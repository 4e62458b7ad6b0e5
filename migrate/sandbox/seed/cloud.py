"""Seed one environment: the old ("blue") EKS cluster with its workloads, the Terraform state that owns it
(in the sandbox's S3, with its DynamoDB digest), the Route 53 weighted records and the production API.

Everything goes through the AWS APIs of the sandbox's moto server, so EKS clusters get their Kubernetes
API emulators through the same hook the toolkit's clusters use.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import boto3

from ..clusters import ClusterRegistry
from . import kube, workloads
from .tfstate import KUBERNETES, StateBuilder

ENVIRONMENTS = ("dev", "staging", "prod")
ZONE = "sandbox.internal"
BUCKET = "sandbox-tfstate"
LOCK_TABLE = "sandbox-tflock"
STATE_KEY = "platform/terraform.tfstate"
RECORD_TTL = 5
OLD_VERSION = "1.29"
TRUST_EKS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
TRUST_EC2 = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def state_key(workspace: str) -> str:
    """Terraform's S3 layout for a non-default workspace (workspace_key_prefix "env:")."""
    return f"env:/{workspace}/{STATE_KEY}"


def record_name(env: str) -> str:
    return f"app.{env}.{ZONE}"


@dataclass
class Aws:
    s3: Any
    dynamodb: Any
    ec2: Any
    iam: Any
    eks: Any
    route53: Any
    apigw: Any

    @classmethod
    def connect(cls, url: str, region: str) -> Aws:
        kw = {"endpoint_url": url, "region_name": region, "aws_access_key_id": "testing",
              "aws_secret_access_key": "testing"}
        make: Any = boto3.client  # typed per service literal when boto3-stubs is installed
        return cls(*(make(s, **kw) for s in ("s3", "dynamodb", "ec2", "iam", "eks", "route53",
                                                      "apigatewayv2")))


def seed_shared(aws: Aws) -> str:
    """The state bucket, the lock table and the zone, shared by every environment. Returns the zone id."""
    aws.s3.create_bucket(Bucket=BUCKET)
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    aws.dynamodb.create_table(TableName=LOCK_TABLE, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}])
    zone = aws.route53.create_hosted_zone(Name=ZONE, CallerReference="sandbox-zone",
                                          HostedZoneConfig={"Comment": "sandbox", "PrivateZone": False})
    return str(zone["HostedZone"]["Id"]).split("/")[-1]


def create_infrastructure(aws: Aws, env: str, idx: int) -> dict[str, Any]:
    """Shared network and IAM, and the blue cluster (which starts its emulator through the EKS hook)."""
    tags = [{"Key": "Environment", "Value": env}, {"Key": "ManagedBy", "Value": "terraform"}]
    vpc = aws.ec2.create_vpc(CidrBlock=f"10.{idx}.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [*tags, {"Key": "Name", "Value": f"{env}-vpc"}]}])["Vpc"]
    subnets = [aws.ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=f"10.{idx}.{i + 1}.0/24",
                                     AvailabilityZone=f"us-east-1{'ab'[i]}")["Subnet"] for i in range(2)]
    cluster_role = aws.iam.create_role(RoleName=f"{env}-eks-cluster", AssumeRolePolicyDocument=TRUST_EKS)["Role"]
    node_role = aws.iam.create_role(RoleName=f"{env}-eks-nodes", AssumeRolePolicyDocument=TRUST_EC2)["Role"]
    name = f"{env}-blue"
    cluster = aws.eks.create_cluster(
        name=name, version=OLD_VERSION, roleArn=cluster_role["Arn"],
        resourcesVpcConfig={"subnetIds": [s["SubnetId"] for s in subnets], "endpointPublicAccess": True},
        tags={"Environment": env, "Color": "blue"})["cluster"]
    nodegroup = aws.eks.create_nodegroup(
        clusterName=name, nodegroupName=f"{name}-default", nodeRole=node_role["Arn"],
        subnets=[s["SubnetId"] for s in subnets], scalingConfig={"minSize": 2, "maxSize": 6, "desiredSize": 3},
        instanceTypes=["m6i.large"])["nodegroup"]
    issuer = cluster["identity"]["oidc"]["issuer"]
    oidc = aws.iam.create_open_id_connect_provider(
        Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"])
    oidc_arn = oidc["OpenIDConnectProviderArn"]
    host = issuer.removeprefix("https://")
    irsa = aws.iam.create_role(RoleName=f"{name}-irsa-shop", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": oidc_arn}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{host}:sub": "system:serviceaccount:shop:shop-api"}}}]}))["Role"]
    return {"vpc": vpc, "subnets": subnets, "cluster_role": cluster_role, "node_role": node_role,
            "cluster": cluster, "nodegroup": nodegroup, "oidc_arn": oidc_arn, "irsa": irsa}


def seed_workloads(registry: ClusterRegistry, env: str) -> None:
    cluster = registry.get(f"{env}-blue")
    if cluster is None:
        raise RuntimeError(f"the EKS hook did not start an emulator for {env}-blue")
    kube.apply(cluster.api, workloads.blue_cluster(env, cluster.name))


def ingress_hostname(registry: ClusterRegistry, cluster: str, timeout: float = 10.0) -> str:
    emu = registry.get(cluster)
    deadline = time.monotonic() + timeout
    while emu is not None and time.monotonic() < deadline:
        svc = emu.api.api.store.get(("", "services"), workloads.INGRESS_NAMESPACE, workloads.INGRESS_SERVICE)
        for ing in ((svc or {}).get("status") or {}).get("loadBalancer", {}).get("ingress") or []:
            if ing.get("hostname"):
                return str(ing["hostname"])
        time.sleep(0.05)
    raise RuntimeError(f"{cluster}: the ingress controller's LoadBalancer got no hostname")


def seed_traffic(aws: Aws, zone_id: str, env: str, lb_host: str) -> dict[str, Any]:
    """Weighted records (all traffic to blue; green is a weight-0 placeholder on blue's LB) and the prod API."""
    name = record_name(env)
    changes = [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": name, "Type": "CNAME", "SetIdentifier": set_id, "Weight": weight, "TTL": RECORD_TTL,
        "ResourceRecords": [{"Value": lb_host}]}} for set_id, weight in (("blue", 100), ("green", 0))]
    aws.route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={
        "Comment": "seed: all traffic to blue", "Changes": changes})
    api = aws.apigw.create_api(Name=f"{env}-prod-api", ProtocolType="HTTP", Tags={"Environment": env})
    integ = aws.apigw.create_integration(ApiId=api["ApiId"], IntegrationType="HTTP_PROXY",
                                         IntegrationMethod="ANY", IntegrationUri=f"http://{lb_host}/{{proxy}}",
                                         PayloadFormatVersion="1.0", TimeoutInMillis=29000)
    route = aws.apigw.create_route(ApiId=api["ApiId"], RouteKey="ANY /{proxy+}",
                                   Target=f"integrations/{integ['IntegrationId']}")
    stage = aws.apigw.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
    return {"api": api, "integration": integ, "route": route, "stage": stage}


def build_state(env: str, zone_id: str, infra: dict[str, Any], traffic: dict[str, Any], lb_host: str) -> StateBuilder:
    st = StateBuilder()
    acct = "123456789012"
    vpc, subnets, cluster, ng = infra["vpc"], infra["subnets"], infra["cluster"], infra["nodegroup"]
    name = cluster["name"]
    eks_mod = "module.eks"
    tags = {"Environment": env, "ManagedBy": "terraform"}
    st.add("aws_vpc", "main", {"id": vpc["VpcId"], "arn": f"arn:aws:ec2:us-east-1:{acct}:vpc/{vpc['VpcId']}",
                               "cidr_block": vpc["CidrBlock"], "enable_dns_hostnames": True,
                               "enable_dns_support": True, "instance_tenancy": "default",
                               "tags": {**tags, "Name": f"{env}-vpc"}, "tags_all": {**tags, "Name": f"{env}-vpc"}})
    st.add("aws_subnet", "private", {}, each=None, deps=["aws_vpc.main"], instances=[
        (i, {"id": s["SubnetId"], "arn": f"arn:aws:ec2:us-east-1:{acct}:subnet/{s['SubnetId']}",
             "vpc_id": vpc["VpcId"], "cidr_block": s["CidrBlock"], "availability_zone": s["AvailabilityZone"],
             "tags": {**tags, "kubernetes.io/role/internal-elb": "1"}}) for i, s in enumerate(subnets)])
    for res, role in (("cluster", infra["cluster_role"]), ("nodes", infra["node_role"])):
        st.add("aws_iam_role", res, {"id": role["RoleName"], "name": role["RoleName"], "arn": role["Arn"],
                                     "unique_id": role["RoleId"], "assume_role_policy": TRUST_EKS
                                     if res == "cluster" else TRUST_EC2, "path": "/", "tags": tags})
    st.add("aws_route53_zone", "main", {"id": zone_id, "name": ZONE, "zone_id": zone_id}, mode="data")
    subnet_ids = [s["SubnetId"] for s in subnets]
    cluster_deps = ["aws_iam_role.cluster", "aws_subnet.private", "aws_vpc.main"]
    st.add("aws_eks_cluster", "this", {
        "id": name, "name": name, "arn": cluster["arn"], "version": cluster["version"], "status": "ACTIVE",
        "endpoint": cluster["endpoint"], "role_arn": cluster["roleArn"], "platform_version": "eks.8",
        "certificate_authority": [{"data": cluster["certificateAuthority"]["data"]}],
        "identity": [{"oidc": [{"issuer": cluster["identity"]["oidc"]["issuer"]}]}],
        "vpc_config": [{"subnet_ids": subnet_ids, "endpoint_public_access": True, "endpoint_private_access": False,
                        "security_group_ids": [], "vpc_id": vpc["VpcId"]}],
        "tags": {"Environment": env, "Color": "blue"}}, module=eks_mod, deps=cluster_deps)
    st.add("aws_eks_node_group", "default", {
        "id": f"{name}:{ng['nodegroupName']}", "cluster_name": name, "node_group_name": ng["nodegroupName"],
        "arn": ng["nodegroupArn"], "node_role_arn": ng["nodeRole"], "subnet_ids": subnet_ids,
        "instance_types": ["m6i.large"], "scaling_config": [{"desired_size": 3, "max_size": 6, "min_size": 2}],
        "status": "ACTIVE"}, module=eks_mod,
        deps=[*cluster_deps, "aws_iam_role.nodes", f"{eks_mod}.aws_eks_cluster.this"])
    st.add("aws_eks_addon", "vpc_cni", {
        "id": f"{name}:vpc-cni", "cluster_name": name, "addon_name": "vpc-cni", "addon_version": "v1.18.1-eksbuild.1",
        "arn": f"arn:aws:eks:us-east-1:{acct}:addon/{name}/vpc-cni/sandbox"},
        module=eks_mod, deps=[*cluster_deps, f"{eks_mod}.aws_eks_cluster.this"])
    issuer = cluster["identity"]["oidc"]["issuer"]
    st.add("aws_iam_openid_connect_provider", "this", {
        "id": infra["oidc_arn"], "arn": infra["oidc_arn"], "url": issuer.removeprefix("https://"),
        "client_id_list": ["sts.amazonaws.com"], "thumbprint_list": ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]},
        module=eks_mod, deps=[*cluster_deps, f"{eks_mod}.aws_eks_cluster.this"])
    irsa = infra["irsa"]
    st.add("aws_iam_role", "irsa", {"id": irsa["RoleName"], "name": irsa["RoleName"], "arn": irsa["Arn"],
                                    "unique_id": irsa["RoleId"], "path": "/"},
           module=eks_mod, deps=[*cluster_deps, f"{eks_mod}.aws_eks_cluster.this",
                                 f"{eks_mod}.aws_iam_openid_connect_provider.this"])
    st.add("kubernetes_namespace", "shop", {"id": "shop", "metadata": [{"name": "shop", "labels": {"team": "shop"}}]},
           provider=KUBERNETES, deps=[*cluster_deps, f"{eks_mod}.aws_eks_cluster.this"])
    rname = record_name(env)
    st.add("aws_route53_record", "weighted", {}, module="module.dns", each="map",
           deps=["data.aws_route53_zone.main"], instances=[
               (sid, {"id": f"{zone_id}_{rname}_CNAME_{sid}", "zone_id": zone_id, "name": rname, "type": "CNAME",
                      "ttl": RECORD_TTL, "records": [lb_host], "set_identifier": sid,
                      "weighted_routing_policy": [{"weight": w}], "fqdn": rname})
               for sid, w in (("blue", 100), ("green", 0))])
    api, integ, route = traffic["api"], traffic["integration"], traffic["route"]
    gw = "module.prod_api"
    st.add("aws_apigatewayv2_api", "this", {"id": api["ApiId"], "name": api["Name"], "protocol_type": "HTTP",
                                            "api_endpoint": api["ApiEndpoint"],
                                            "execution_arn": f"arn:aws:execute-api:us-east-1:{acct}:{api['ApiId']}"},
           module=gw)
    st.add("aws_apigatewayv2_integration", "this", {
        "id": integ["IntegrationId"], "api_id": api["ApiId"], "integration_type": "HTTP_PROXY",
        "integration_method": "ANY", "integration_uri": integ["IntegrationUri"], "payload_format_version": "1.0",
        "timeout_milliseconds": 29000}, module=gw, deps=[f"{gw}.aws_apigatewayv2_api.this"])
    st.add("aws_apigatewayv2_route", "proxy", {"id": route["RouteId"], "api_id": api["ApiId"],
                                               "route_key": "ANY /{proxy+}",
                                               "target": f"integrations/{integ['IntegrationId']}"},
           module=gw, deps=[f"{gw}.aws_apigatewayv2_api.this", f"{gw}.aws_apigatewayv2_integration.this"])
    st.add("aws_apigatewayv2_stage", "default", {"id": "$default", "api_id": api["ApiId"], "name": "$default",
                                                 "auto_deploy": True, "invoke_url": api["ApiEndpoint"]},
           module=gw, deps=[f"{gw}.aws_apigatewayv2_api.this"])
    st.output("cluster_name", name)
    st.output("cluster_endpoint", cluster["endpoint"])
    st.output("ingress_hostname", lb_host)
    st.output("prod_api_endpoint", api["ApiEndpoint"])
    return st


def write_state(aws: Aws, workspace: str, body: bytes) -> str:
    key = state_key(workspace)
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="application/json")
    aws.dynamodb.put_item(TableName=LOCK_TABLE, Item={"LockID": {"S": f"{BUCKET}/{key}-md5"},
                                                      "Digest": {"S": hashlib.md5(body).hexdigest()}})
    return key
