variable "project" {
  description = "GCP project id."
  type        = string
}

variable "location" {
  description = "Region or zone of the cluster."
  type        = string
}

variable "cluster_name" {
  description = "Name of the GKE cluster."
  type        = string
}

variable "kubernetes_version" {
  description = "Minimum master version, e.g. 1.29."
  type        = string
  default     = "1.29"
}

variable "network" {
  description = "VPC network self link or name (shared)."
  type        = string
  default     = "default"
}

variable "subnetwork" {
  description = "Subnetwork self link or name (shared)."
  type        = string
  default     = "default"
}

variable "machine_type" {
  description = "Machine type of the default node pool."
  type        = string
  default     = "e2-standard-4"
}

variable "node_count" {
  description = "Nodes per zone in the default node pool."
  type        = number
  default     = 3
}

variable "labels" {
  description = "Resource labels."
  type        = map(string)
  default     = {}
}
