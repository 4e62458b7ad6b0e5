variable "cluster_name" {
  description = "Name of the EKS cluster, e.g. dev-blue or dev-green."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane."
  type        = string
  default     = "1.29"
}

variable "cluster_role_arn" {
  description = "IAM role the EKS control plane assumes (shared, owned by the root stack)."
  type        = string
}

variable "node_role_arn" {
  description = "IAM role of the managed node group (shared, owned by the root stack)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the control plane ENIs and the nodes."
  type        = list(string)
}

variable "instance_types" {
  description = "Instance types of the default node group."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "node_scaling" {
  description = "Size of the default node group."
  type = object({
    min     = number
    max     = number
    desired = number
  })
  default = { min = 2, max = 6, desired = 3 }
}

variable "irsa_service_accounts" {
  description = "namespace:name of the service account that may assume the IRSA role."
  type        = string
  default     = "system:serviceaccount:shop:shop-api"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
