output "cluster_name" {
  description = "The workspace's cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Its Kubernetes API URL."
  value       = module.eks.endpoint
}

output "ingress_hostname" {
  description = "The load balancer hostname the blue record points at."
  value       = var.traffic["blue"].target
}

output "prod_api_endpoint" {
  description = "Invoke URL of the production API."
  value       = module.prod_api.api_endpoint
}
