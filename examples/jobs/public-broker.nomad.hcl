# Public/test mode, Brokers: before each broker starts, the driver binds its
# EIP to the host it landed on (moving it from the previous host only when
# that binding belongs to a replaced allocation of the same slot), and the
# broker advertises EIP:host-port. The EIP ids come from Consul KV in the
# seed's layout, brokerEip/<cluster>/eipId/<alloc index>; use `ids = [...]`
# or `id = "..."` instead to name them in the job.
variable "image" {
  type    = string
  default = "rmq-nomad/rocketmq:5.3.3"
}
variable "cluster" {
  type    = string
  default = "pub"
}
variable "nsaddr" {
  type    = string
  default = "172.17.0.1:18080"
}
variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}
variable "count" {
  type    = number
  default = 2
}

job "rocketmq-pub-broker" {
  datacenters = var.datacenters

  group "broker" {
    count = var.count

    # Only on nodes whose UCloud access works: the driver publishes it as
    # an attribute (ok | unreachable | misconfigured | ...) instead of
    # turning unhealthy, which would also block private-mode tasks.
    constraint {
      attribute = "${attr.driver.rocketmq.ucloud.status}"
      value     = "ok"
    }

    network {
      port "rmq" {}
    }

    # Keep the broker's store (topics, messages, consumer offsets) when
    # Nomad moves the allocation: sticky reuses it on the same node, migrate
    # copies it from the previous node on a drain or reschedule.
    ephemeral_disk {
      sticky  = true
      migrate = true
      size    = 4096
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
          mode    = "public"
          port    = "rmq"
          eip {
            consul_key = true
          }
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
