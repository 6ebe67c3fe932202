# Private mode, NameServers: no public IPs. Each NameServer registers the
# Consul service nameServer<cluster> (host IP + dynamic port); the plugin's
# address endpoint (nsaddr) serves the passing ones at /rocketmq/<cluster>,
# which brokers and clients use as their "address server".
variable "image" {
  type    = string
  default = "rmq-nomad/rocketmq:5.3.3"
}
variable "cluster" {
  type    = string
  default = "demo"
}
variable "count" {
  type    = number
  default = 2
}
variable "node_regexp" {
  # Which nodes may run it (node.unique.name); ".*" is any node.
  type    = string
  default = ".*"
}
variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

job "rocketmq-namesrv" {
  datacenters = var.datacenters

  group "namesrv" {
    count = var.count

    constraint {
      attribute = "${node.unique.name}"
      operator  = "regexp"
      value     = var.node_regexp
    }

    network {
      port "rmq" {}
    }

    # The address endpoint's feed: passing instances only.
    service {
      name     = "nameServer${var.cluster}"
      port     = "rmq"
      provider = "consul"
      check {
        type     = "tcp"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "namesrv" {
      driver = "rocketmq"

      config {
        image = var.image
        args  = ["namesrv"]
        ports = ["rmq"]

        rocketmq {
          cluster = var.cluster
          role    = "namesrv"
          mode    = "private"
          port    = "rmq"
        }
      }

      resources {
        cpu    = 200
        memory = 300
      }
    }
  }
}
