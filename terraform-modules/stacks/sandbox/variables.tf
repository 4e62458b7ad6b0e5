variable "cluster_name" {
  description = "Cluster of this workspace: <env>-blue in the old workspace, <env>-green in the copy."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor of the cluster."
  type        = string
  default     = "1.29"
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "vpc_cidr" {
  description = "CIDR of the environment's VPC."
  type        = string
  default     = "10.1.0.0/16"
}

variable "zone_name" {
  description = "Route 53 zone that holds the production record."
  type        = string
  default     = "sandbox.internal"
}

variable "record_ttl" {
  description = "TTL of the weighted records."
  type        = number
  default     = 5
}

variable "traffic" {
  description = "Set identifier => { ingress load balancer hostname, weight }."
  type = map(object({
    target = string
    weight = number
  }))
}

variable "prod_api_target" {
  description = "Base URL the production API proxies to (the serving cluster's ingress)."
  type        = string
}
