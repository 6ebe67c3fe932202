variable "cluster" {
  description = "The tenant's RocketMQ cluster id: the jobs' rocketmq.cluster, the Consul keys brokerEip/<cluster>/..., the NameServer address path /rocketmq/<cluster>."
  type        = string

  validation {
    # The project's cluster id rule (clusterid.Valid), shortened to 40
    # characters so that the UCloud resource names below stay within 63.
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", var.cluster))
    error_message = "The cluster id must be 1-40 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit."
  }
}

variable "broker_count" {
  description = "How many brokers the cluster runs: one EIP each (the broker job's count)."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count >= 1 && var.broker_count <= 50 && floor(var.broker_count) == var.broker_count
    error_message = "The broker count must be a whole number between 1 and 50."
  }
}

variable "broker_bandwidth" {
  description = "Bandwidth cap of each broker EIP, in Mbps: the tenant's throughput limit."
  type        = number
  default     = 10

  validation {
    condition     = var.broker_bandwidth >= 1 && var.broker_bandwidth <= 800
    error_message = "The bandwidth must be 1-800 Mbps (ModifyEIPBandwidth's range; 1-200 with charge_mode traffic)."
  }
}

variable "namesrv_bandwidth" {
  description = "Bandwidth cap of the EIP of the NameServers' public ULB, in Mbps."
  type        = number
  default     = 5
}

variable "namesrv_port" {
  description = "The public port of the NameServers (the ULB VServer's frontend port)."
  type        = number
  default     = 9876
}

variable "internet_type" {
  description = "EIP line: bgp, international or native (as the ucloud provider names them)."
  type        = string
  default     = "bgp"
}

variable "charge_type" {
  description = "EIP billing: month, year or dynamic (by the hour)."
  type        = string
  default     = "month"
}

variable "charge_mode" {
  description = "EIP charge mode: bandwidth or traffic."
  type        = string
  default     = "bandwidth"
}

variable "duration" {
  description = "How many months (charge_type month; 0 = to the end of this month) or years the EIPs are bought for."
  type        = number
  default     = 1
}

variable "tag" {
  description = "UCloud business group (tag) of every resource."
  type        = string
  default     = "rocketmq"
}

variable "eip_remark_prefix" {
  description = "The EIPs' remark is <prefix><cluster> broker-<i>; set the plugin's eip_remark_prefix to the same value so that a client refuses another tenant's EIP even when it is on the allow-list."
  type        = string
  default     = "rmq:"
}

variable "nomad_namespace" {
  description = "The Nomad namespace the tenant's jobs run in (a cluster belongs to one namespace); empty means the cluster id."
  type        = string
  default     = ""
}

variable "region" {
  description = "UCloud region, e.g. cn-bj2."
  type        = string
}

variable "project_id" {
  description = "UCloud project id (org-...)."
  type        = string
}

variable "ucloud_base_url" {
  description = "UCloud API endpoint. null: UCloud's own. A dry run against the simulator: http://127.0.0.1:8790."
  type        = string
  default     = null
}

variable "consul_address" {
  description = "Consul HTTP address (host:port) of the Nomad cluster's Consul. null: CONSUL_HTTP_ADDR, else localhost:8500."
  type        = string
  default     = null
}

variable "consul_scheme" {
  description = "http or https."
  type        = string
  default     = null
}

variable "consul_datacenter" {
  description = "Consul datacenter; null: the agent's."
  type        = string
  default     = null
}
