variable "zone_id" {
  description = "Route 53 hosted zone id."
  type        = string
}

variable "name" {
  description = "Record name, e.g. app.dev.sandbox.internal."
  type        = string
}

variable "ttl" {
  description = "TTL of both records (a weighted group shares one TTL)."
  type        = number
  default     = 5
}

variable "targets" {
  description = "Set identifier => { target hostname, weight 0-255 }. Exactly two: old and new."
  type = map(object({
    target = string
    weight = number
  }))

  validation {
    condition     = length(var.targets) == 2 && alltrue([for t in values(var.targets) : t.weight >= 0 && t.weight <= 255])
    error_message = "Give exactly two targets with weights between 0 and 255."
  }
}
