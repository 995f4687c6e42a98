# A complete root module: deploys the relay into one region and prints its URL.
#
#   ../../build-lambda.sh              # writes ../../build/relay-lambda.zip
#   terraform init && terraform apply
#   rcodesign sign --remote-signing-url "$(terraform output -raw wss_url)" --remote-public-key-pem-file signer.pem app.zip

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-west-2"
}

variable "domain_name" {
  description = "Optional custom domain (e.g. relay.example.com) in the Route 53 zone below."
  type        = string
  default     = ""
}

variable "route53_zone_id" {
  description = "Route 53 zone holding domain_name; needed only with a custom domain."
  type        = string
  default     = ""
}

module "relay" {
  source = "../.."

  name            = "farsign-relay"
  lambda_zip_path = "${path.module}/../../build/relay-lambda.zip"
  motd            = "farsign relay; sessions last at most 10 minutes"

  max_session_ttl_seconds     = 600
  lambda_reserved_concurrency = 50
  domain_name                 = var.domain_name
  route53_zone_id             = var.route53_zone_id

  tags = {
    project = "farsign"
  }
}

output "wss_url" {
  description = "Relay URL for rcodesign and farsign."
  value       = module.relay.wss_url
}
