# Private mode, Brokers: two broker groups (broker-0, broker-1) on two
# hosts, so a host death or a drain takes one group away and producers
# retry on the other (docs/moves.md). Each broker advertises its host's IP
# and its host port (the driver sets brokerIP1/listenPort), gets the
# cluster's NameServers from Consul at start (namesrvAddr, kept current by
# the driver; the address endpoint, rocketmq.namesrv.domain, is for the
# clients and the fallback), and has the cluster's topics whether its store
# came along or not (topics below, and rocketmq/<cluster>/topics/<name> in
# Consul KV: docs/topics.md).
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
  # Broker groups (one broker each). Two or more: a move then costs
  # producers a few retried sends instead of an outage.
  type    = number
  default = 2
}
variable "distinct_hosts" {
  # One broker group per host, so one host death takes one group. false
  # only to try the job on a single machine.
  type    = bool
  default = true
}
variable "topics" {
  # The cluster's topics (8 read/write queues each), on every broker,
  # also on one that comes back with an empty store.
  type    = list(string)
  default = ["demo-topic"]
}
variable "subscription_groups" {
  type    = list(string)
  default = ["demo-consumer"]
}
variable "namesrv_source" {
  # "consul": the driver writes the cluster's NameServers as namesrvAddr
  # at start and keeps them current (the broker registers at once).
  # "task": the broker asks the address server itself (~20 s to register).
  type    = string
  default = "consul"
}
variable "empty_store_read_only" {
  # How long a broker that comes back with an empty store stays read-only
  # (docs/moves.md); "0s" never.
  type    = string
  default = "45s"
}
variable "restore_holes" {
  # Give a migrated store its sparse files back at start (docs/moves.md).
  type    = bool
  default = true
}
variable "broker_properties" {
  # The broker's own settings (ROCKETMQ_BROKER_CONF), see docs/moves.md,
  # "Store sizes".
  type    = string
  default = <<-EOT
    # Topics exist because they are declared (rocketmq.topics, Consul
    # KV), not because a producer sent to them.
    autoCreateTopicEnable=false
    # Store files sized for a store that moves: RocketMQ creates them
    # at full size (sparse), and a migration copies every byte of
    # them. 64 MiB commit log files (default 1 GiB), consume queue
    # files of 60,000 entries (default 300,000), index files of 2M
    # entries (default 20M, 420 MB). Set them before the cluster's
    # first start: a store written with other sizes does not load.
    mappedFileSizeCommitLog=67108864
    mappedFileSizeConsumeQueue=1200000
    maxHashSlotNum=500000
    maxIndexNum=2000000
  EOT
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

    constraint {
      operator = "distinct_hosts"
      value    = var.distinct_hosts
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
          cluster               = var.cluster
          role                  = "broker"
          mode                  = "private"
          port                  = "rmq"
          topics                = var.topics
          subscription_groups   = var.subscription_groups
          namesrv_source        = var.namesrv_source
          empty_store_read_only = var.empty_store_read_only
        }
      }

      env {
        ROCKETMQ_BROKER_NAME      = "broker-${NOMAD_ALLOC_INDEX}"
        ROCKETMQ_NAMESRV_DOMAIN   = var.nsaddr
        ROCKETMQ_NAMESRV_SUBGROUP = var.cluster
        ROCKETMQ_BROKER_CONF      = "${NOMAD_TASK_DIR}/broker.properties"
        ROCKETMQ_RESTORE_HOLES    = var.restore_holes
      }

      template {
        destination = "local/broker.properties"
        data        = var.broker_properties
      }

      resources {
        cpu    = 300
        memory = 600
      }
    }
  }
}
