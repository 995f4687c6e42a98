# farsign relay on AWS: one API Gateway websocket API whose three routes invoke one Go
# Lambda (the same relay core as `relay serve`), with sessions in one DynamoDB table.

locals {
  function_name = "${var.name}-relay"
  table_name    = "${var.name}-sessions"

  # The Lambda posts replies and forwards through the management API of its own stage.
  # Setting it explicitly (instead of deriving it from each event) keeps it right when
  # clients arrive through a custom domain.
  management_endpoint = "${replace(aws_apigatewayv2_api.relay.api_endpoint, "wss://", "https://")}/${var.stage_name}"

  custom_domain      = var.domain_name != ""
  create_certificate = local.custom_domain && var.certificate_arn == ""
  certificate_arn    = local.create_certificate ? aws_acm_certificate_validation.relay[0].certificate_arn : var.certificate_arn
}

# ---------------------------------------------------------------------------
# Sessions table. Keep in sync with relay/dynamostore (schema constants); the Go test
# in this folder checks that they match, and internal/dynalite builds its test table
# from this very block.

resource "aws_dynamodb_table" "sessions" {
  name         = local.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "session_id"

  attribute {
    name = "session_id"
    type = "S"
  }

  attribute {
    name = "initiator"
    type = "S"
  }

  attribute {
    name = "joiner"
    type = "S"
  }

  # Connection -> sessions lookups on $disconnect, without a table scan. Both indexes
  # are sparse and keys-only; the store re-reads each hit with a consistent GetItem.
  global_secondary_index {
    name            = "by-initiator"
    hash_key        = "initiator"
    projection_type = "KEYS_ONLY"
  }

  global_secondary_index {
    name            = "by-joiner"
    hash_key        = "joiner"
    projection_type = "KEYS_ONLY"
  }

  # DynamoDB deletes expired items lazily (up to days later); the store also checks
  # expiry on every read.
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

# ---------------------------------------------------------------------------
# Lambda

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = local.function_name
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

# Least privilege: exactly the DynamoDB calls relay/dynamostore makes (dynamostore.Actions)
# and the management API calls relay/apigw makes (apigw.Actions). terraform_test.go
# compares both lists with this document in both directions.
data "aws_iam_policy_document" "lambda" {
  statement {
    sid = "Sessions"
    actions = [
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.sessions.arn]
  }

  statement {
    sid       = "SessionsByConnection"
    actions   = ["dynamodb:Query"]
    resources = ["${aws_dynamodb_table.sessions.arn}/index/*"]
  }

  statement {
    sid     = "Connections"
    actions = ["execute-api:ManageConnections"]
    resources = [
      "${aws_apigatewayv2_api.relay.execution_arn}/${var.stage_name}/POST/@connections/*",
      "${aws_apigatewayv2_api.relay.execution_arn}/${var.stage_name}/DELETE/@connections/*",
    ]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "relay"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

resource "aws_lambda_function" "relay" {
  function_name                  = local.function_name
  role                           = aws_iam_role.lambda.arn
  filename                       = var.lambda_zip_path
  source_code_hash               = filebase64sha256(var.lambda_zip_path)
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = ["arm64"]
  memory_size                    = var.lambda_memory_size
  timeout                        = var.lambda_timeout_seconds
  reserved_concurrent_executions = var.lambda_reserved_concurrency

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.lambda.name
  }

  environment {
    variables = {
      RELAY_TABLE                       = aws_dynamodb_table.sessions.name
      RELAY_MANAGEMENT_ENDPOINT         = local.management_endpoint
      RELAY_MAX_TTL_SECONDS             = tostring(var.max_session_ttl_seconds)
      RELAY_MOTD                        = var.motd
      RELAY_MAX_SESSIONS_PER_CONNECTION = tostring(var.max_sessions_per_connection)
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.lambda]
}

resource "aws_lambda_permission" "apigateway" {
  statement_id  = "AllowAPIGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.relay.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.relay.execution_arn}/${var.stage_name}/*"
}

# ---------------------------------------------------------------------------
# API Gateway websocket API

resource "aws_apigatewayv2_api" "relay" {
  name                       = var.name
  description                = "farsign remote code signing relay (rcodesign compatible)"
  protocol_type              = "WEBSOCKET"
  route_selection_expression = "$request.body.action"
  tags                       = var.tags
}

resource "aws_apigatewayv2_integration" "relay" {
  api_id             = aws_apigatewayv2_api.relay.id
  integration_type   = "AWS_PROXY"
  integration_method = "POST"
  integration_uri    = aws_lambda_function.relay.invoke_arn
}

# Replies are posted through @connections (reply before forward), so no route needs
# a route response.
resource "aws_apigatewayv2_route" "relay" {
  for_each = toset(["$connect", "$disconnect", "$default"])

  api_id    = aws_apigatewayv2_api.relay.id
  route_key = each.value
  target    = "integrations/${aws_apigatewayv2_integration.relay.id}"
}

resource "aws_cloudwatch_log_group" "access" {
  count = var.access_log_enabled ? 1 : 0

  name              = "/aws/apigateway/${var.name}/${var.stage_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "relay" {
  api_id      = aws_apigatewayv2_api.relay.id
  name        = var.stage_name
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  dynamic "access_log_settings" {
    for_each = aws_cloudwatch_log_group.access
    content {
      destination_arn = access_log_settings.value.arn
      # No message bodies: connection, route and status only.
      format = jsonencode({
        requestId    = "$context.requestId"
        connectionId = "$context.connectionId"
        eventType    = "$context.eventType"
        routeKey     = "$context.routeKey"
        status       = "$context.status"
        requestTime  = "$context.requestTimeEpoch"
        sourceIp     = "$context.identity.sourceIp"
        error        = "$context.error.message"
        integration  = "$context.integration.error"
      })
    }
  }

  tags = var.tags

  depends_on = [aws_apigatewayv2_route.relay]
}

# ---------------------------------------------------------------------------
# Optional custom domain (wss://<domain_name>/) with an ACM certificate.

resource "aws_acm_certificate" "relay" {
  count = local.create_certificate ? 1 : 0

  domain_name       = var.domain_name
  validation_method = "DNS"
  tags              = var.tags

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.route53_zone_id != ""
      error_message = "domain_name without certificate_arn needs route53_zone_id to validate the new certificate."
    }
  }
}

resource "aws_route53_record" "validation" {
  for_each = local.create_certificate ? {
    for o in aws_acm_certificate.relay[0].domain_validation_options : o.domain_name => o
  } : {}

  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "relay" {
  count = local.create_certificate ? 1 : 0

  certificate_arn         = aws_acm_certificate.relay[0].arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

resource "aws_apigatewayv2_domain_name" "relay" {
  count = local.custom_domain ? 1 : 0

  domain_name = var.domain_name

  domain_name_configuration {
    certificate_arn = local.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }

  tags = var.tags
}

resource "aws_apigatewayv2_api_mapping" "relay" {
  count = local.custom_domain ? 1 : 0

  api_id      = aws_apigatewayv2_api.relay.id
  domain_name = aws_apigatewayv2_domain_name.relay[0].id
  stage       = aws_apigatewayv2_stage.relay.id
}

resource "aws_route53_record" "relay" {
  count = local.custom_domain && var.route53_zone_id != "" ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_apigatewayv2_domain_name.relay[0].domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.relay[0].domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = false
  }
}
