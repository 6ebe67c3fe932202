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
  # Broker groups (one broker and one EIP each); see private-broker.
  type    = number
  default = 2
}
variable "distinct_hosts" {
  type    = bool
  default = true
}
variable "topics" {
  type    = list(string)
  default = ["pub-topic"]
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

    constraint {
      operator = "distinct_hosts"
      value    = var.distinct_hosts
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
          topics = var.topics
        }
      }

      env {
        ROCKETMQ_BROKER_NAME      = "broker-${NOMAD_ALLOC_INDEX}"
        ROCKETMQ_NAMESRV_DOMAIN   = var.nsaddr
        ROCKETMQ_NAMESRV_SUBGROUP = var.cluster
        ROCKETMQ_BROKER_CONF      = "${NOMAD_TASK_DIR}/broker.properties"
      }

      # As in private-broker.nomad.hcl (docs/moves.md, "Store sizes").
      template {
        destination = "local/broker.properties"
        data        = <<-EOT
          autoCreateTopicEnable=false
          mappedFileSizeCommitLog=67108864
          mappedFileSizeConsumeQueue=1200000
          maxHashSlotNum=500000
          maxIndexNum=2000000
        EOT
      }

      resources {
        cpu    = 300
        memory = 600
      }
    }
  }
}
