variable "name" {
  description = "Name of the HTTP API."
  type        = string
}

variable "target_url" {
  description = "Base URL the API proxies to, e.g. http://<ingress load balancer hostname>."
  type        = string
}

variable "timeout_ms" {
  description = "Integration timeout in milliseconds (at most 30000)."
  type        = number
  default     = 29000
}

variable "tags" {
  description = "Tags of the API."
  type        = map(string)
  default     = {}
}
