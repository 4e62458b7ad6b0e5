terraform {
  required_version = ">= 1.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.20"
    }
  }

  # One state per workspace: env:/<workspace>/platform/terraform.tfstate in the sandbox's S3.
  backend "s3" {
    bucket         = "sandbox-tfstate"
    key            = "platform/terraform.tfstate"
    region         = "us-east-1"
    dynamodb_table = "sandbox-tflock"
  }
}

locals {
  environment = split("-", terraform.workspace)[0]
  tags = {
    Environment = local.environment
    ManagedBy   = "terraform"
  }
}

provider "aws" {
  region = var.region
}

provider "kubernetes" {
  host                   = module.eks.endpoint
  cluster_ca_certificate = base64decode(module.eks.certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name]
  }
}

# ---------------------------------------------------------------- shared: one owner at any time

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_hostnames = true
  enable_dns_support   = true
  tags                 = merge(local.tags, { Name = "${local.environment}-vpc" })
}

resource "aws_subnet" "private" {
  count             = 2
  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, count.index + 1)
  availability_zone = "${var.region}${element(["a", "b"], count.index)}"
  tags              = merge(local.tags, { "kubernetes.io/role/internal-elb" = "1" })
}

resource "aws_iam_role" "cluster" {
  name = "${local.environment}-eks-cluster"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

resource "aws_iam_role" "nodes" {
  name = "${local.environment}-eks-nodes"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = local.tags
}

data "aws_route53_zone" "main" {
  name = var.zone_name
}

module "dns" {
  source  = "../../weighted-dns"
  zone_id = data.aws_route53_zone.main.zone_id
  name    = "app.${local.environment}.${var.zone_name}"
  ttl     = var.record_ttl
  targets = var.traffic
}

module "prod_api" {
  source     = "../../temp-gateway"
  name       = "${local.environment}-prod-api"
  target_url = var.prod_api_target
  tags       = { Environment = local.environment }
}

# ---------------------------------------------------------------- owned by the cluster of this workspace

module "eks" {
  source             = "../../eks-cluster"
  cluster_name       = var.cluster_name
  kubernetes_version = var.kubernetes_version
  cluster_role_arn   = aws_iam_role.cluster.arn
  node_role_arn      = aws_iam_role.nodes.arn
  subnet_ids         = aws_subnet.private[*].id
  tags               = { Environment = local.environment, Color = element(split("-", var.cluster_name), 1) }
}

resource "kubernetes_namespace" "shop" {
  metadata {
    name   = "shop"
    labels = { team = "shop" }
  }

  depends_on = [module.eks]
}
