variable "name" {
  description = "Prefix for every resource the module creates (API, function, table, role, log groups)."
  type        = string
  default     = "farsign-relay"

  validation {
    condition     = can(regex("^[A-Za-z0-9-]{1,40}$", var.name))
    error_message = "name must be 1-40 letters, digits or hyphens (it prefixes the Lambda, IAM role and table names)."
  }
}

variable "lambda_zip_path" {
  description = "Path to the Lambda deployment zip holding the `bootstrap` binary for provided.al2023 on arm64. Build it with terraform/build-lambda.sh."
  type        = string
}

variable "stage_name" {
  description = "API Gateway stage name; it is the last path element of the wss URL."
  type        = string
  default     = "v1"
}

variable "max_session_ttl_seconds" {
  description = "Longest session lifetime the relay grants, in seconds. rcodesign asks for 600."
  type        = number
  default     = 600

  validation {
    condition     = var.max_session_ttl_seconds >= 1 && var.max_session_ttl_seconds <= 86400
    error_message = "max_session_ttl_seconds must be between 1 and 86400."
  }
}

variable "motd" {
  description = "Message of the day sent in the greeting; rcodesign prints it. Empty means none."
  type        = string
  default     = ""
}

variable "max_sessions_per_connection" {
  description = "How many live sessions one websocket connection may create or join (rcodesign uses one)."
  type        = number
  default     = 4
}

variable "throttling_burst_limit" {
  description = "API Gateway stage burst limit (requests) for every route."
  type        = number
  default     = 100
}

variable "throttling_rate_limit" {
  description = "API Gateway stage steady-state limit (requests per second) for every route."
  type        = number
  default     = 100
}

variable "lambda_memory_size" {
  description = "Lambda memory in MB. The relay is I/O bound; 128 is plenty."
  type        = number
  default     = 128
}

variable "lambda_timeout_seconds" {
  description = "Lambda timeout in seconds. API Gateway waits at most 29 s for an integration."
  type        = number
  default     = 10
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrent executions for the relay Lambda; -1 leaves it unreserved. A cap bounds the cost of abuse."
  type        = number
  default     = -1
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (Lambda logs with the EMF metrics, and API access logs)."
  type        = number
  default     = 30
}

variable "access_log_enabled" {
  description = "Write API Gateway access logs to CloudWatch. Needs the account-level API Gateway CloudWatch role (aws_api_gateway_account) to exist already."
  type        = bool
  default     = false
}

variable "domain_name" {
  description = "Optional custom domain for the relay, e.g. relay.example.com. Empty means the execute-api URL only."
  type        = string
  default     = ""
}

variable "certificate_arn" {
  description = "ACM certificate (in the same region) for domain_name. Empty with a domain_name set: the module requests one and validates it in route53_zone_id."
  type        = string
  default     = ""
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone for domain_name. When set, the module writes the certificate validation records and an alias record to the API."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags added to every resource that supports them."
  type        = map(string)
  default     = {}
}
