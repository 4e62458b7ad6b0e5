output "fqdn" {
  description = "The record name."
  value       = var.name
}

output "weights" {
  description = "Set identifier => weight."
  value       = { for k, r in aws_route53_record.weighted : k => r.weighted_routing_policy[0].weight }
}
