output "api_id" {
  description = "Id of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Invoke URL of the $default stage."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "integration_id" {
  description = "Id of the HTTP_PROXY integration (switch its URI to move the API to another cluster)."
  value       = aws_apigatewayv2_integration.this.id
}
