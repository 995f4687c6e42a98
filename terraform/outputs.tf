output "wss_url" {
  description = "The relay URL to give rcodesign (--remote-signing-url) and farsign (--relay)."
  value       = local.custom_domain ? "wss://${var.domain_name}/" : "${aws_apigatewayv2_api.relay.api_endpoint}/${aws_apigatewayv2_stage.relay.name}"
}

output "management_endpoint" {
  description = "HTTPS endpoint of the @connections management API the Lambda posts to."
  value       = local.management_endpoint
}

output "api_id" {
  description = "ID of the API Gateway websocket API."
  value       = aws_apigatewayv2_api.relay.id
}

output "function_name" {
  description = "Name of the relay Lambda function."
  value       = aws_lambda_function.relay.function_name
}

output "table_name" {
  description = "Name of the DynamoDB sessions table."
  value       = aws_dynamodb_table.sessions.name
}

output "table_arn" {
  description = "ARN of the DynamoDB sessions table."
  value       = aws_dynamodb_table.sessions.arn
}

output "lambda_log_group" {
  description = "CloudWatch log group holding the relay logs and its EMF metrics (namespace farsign/relay)."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "custom_domain_target" {
  description = "Regional API Gateway domain to point a CNAME/alias at when DNS is not in Route 53 (empty without domain_name)."
  value       = local.custom_domain ? aws_apigatewayv2_domain_name.relay[0].domain_name_configuration[0].target_domain_name : ""
}
