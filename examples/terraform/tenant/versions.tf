terraform {
  required_version = ">= 1.3"

  required_providers {
    ucloud = {
      source  = "ucloud/ucloud"
      version = ">= 1.39.2, < 2.0.0"
    }
    consul = {
      source  = "hashicorp/consul"
      version = ">= 2.20.0, < 3.0.0"
    }
  }
}

# Keys come from the environment, never from a .tfvars file:
# UCLOUD_PUBLIC_KEY and UCLOUD_PRIVATE_KEY for UCloud, CONSUL_HTTP_TOKEN
# (and CONSUL_HTTP_ADDR, if consul_address is not set) for Consul.
provider "ucloud" {
  region     = var.region
  project_id = var.project_id
  # The UCloud API; null means UCloud's own endpoint for the region. Point
  # it at the simulator for a dry run: "http://127.0.0.1:8790".
  base_url = var.ucloud_base_url
}

provider "consul" {
  address    = var.consul_address
  scheme     = var.consul_scheme
  datacenter = var.consul_datacenter
}
