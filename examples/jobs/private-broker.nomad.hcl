# Private mode, Brokers: each broker advertises its host's IP and its host
# port (the driver sets brokerIP1/listenPort), and finds the NameServers
# through the address endpoint (rocketmq.namesrv.domain).
variable "image" {
  type    = string
  default = "rmq-nomad/rocketmq:5.3.3"
}
variable "cluster" {
  type    = string
  default = "demo"
}
variable "nsaddr" {
  # host:port of the NameServer address endpoint (the plugin's nsaddr
  # listen address, or the internal ULB in front of it), reachable from
  # inside the broker's container.
  type    = string
  default = "172.17.0.1:18080"
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
variable "count" {
  type    = number
  default = 1
}

job "rocketmq-broker" {
  datacenters = var.datacenters

  group "broker" {
    count = var.count

    constraint {
      attribute = "${node.unique.name}"
      operator  = "regexp"
      value     = var.node_regexp
    }

    # Keep the broker's store (topics, messages, consumer offsets) when
    # Nomad moves the allocation: sticky reuses it on the same node, migrate
    # copies it from the previous node on a drain or reschedule.
    ephemeral_disk {
      sticky  = true
      migrate = true
      size    = 4096
    }

    network {
      # No `to`: a broker listens on its host port, the port it advertises.
      port "rmq" {}
    }

    service {
      name     = "broker${var.cluster}"
      port     = "rmq"
      provider = "consul"
      check {
        type     = "tcp"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "broker" {
      driver = "rocketmq"

      # A broker needs ~10 s to flush and shut down cleanly (default 5 s).
      kill_timeout = "15s"

      config {
        image = var.image
        args  = ["broker"]
        ports = ["rmq"]

        rocketmq {
          cluster = var.cluster
          role    = "broker"
          mode    = "private"
          port    = "rmq"
        }
      }

      env {
        ROCKETMQ_BROKER_NAME      = "broker-${NOMAD_ALLOC_INDEX}"
        ROCKETMQ_NAMESRV_DOMAIN   = var.nsaddr
        ROCKETMQ_NAMESRV_SUBGROUP = var.cluster
      }

      resources {
        cpu    = 300
        memory = 600
      }
    }
  }
}
