# Controllers for replicated broker groups (RocketMQ controller mode).
#
# Three DLedger controllers elect each broker group's master from its
# SyncStateSet. Their peer list is static (RocketMQ reads it once at start),
# so each controller has a static port and is pinned to one node: one group
# per controller. The driver finds each controller's DLedger id (n0, n1, n2)
# by matching the task's host IP and port against `peers`, and writes the
# group, the peers and the id into local/rocketmq/controller.conf.
#
# Keep stable (see docs/replication.md):
#   - peers: the same list, in the same order, here and in every broker job's
#     `controllers`; changing it means a rolling change of every controller;
#   - each controller's node and its store (the sticky ephemeral disk below,
#     or a host volume): a controller that loses its store rejoins empty and
#     is caught up by the others, but never lose two of three at once.
# Three controllers tolerate one down; five tolerate two.
variable "image" {
  type    = string
  default = "rmq-nomad/rocketmq:5.3.3"
}
variable "cluster" {
  type    = string
  default = "demo"
}
variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}
variable "peers" {
  # ip:port of each controller: the private IP of the node in `nodes` at the
  # same position, and a port that is free on it.
  type    = list(string)
  default = ["10.0.0.11:9878", "10.0.0.12:9878", "10.0.0.13:9878"]
}
variable "nodes" {
  # Nomad node names (node.unique.name) the controllers are pinned to.
  type    = list(string)
  default = ["rmq-host-1", "rmq-host-2", "rmq-host-3"]
}
variable "heap" {
  # A controller keeps only the broker groups' replica metadata: 128 MiB of
  # heap serves hundreds of broker groups.
  type    = string
  default = "-Xms64m -Xmx128m -XX:MaxDirectMemorySize=64m"
}

locals {
  ports = [for p in var.peers : element(split(":", p), 1)]
}

job "rocketmq-controller" {
  datacenters = var.datacenters

  # One group per controller: a static port and a node of its own.
  dynamic "group" {
    for_each = range(length(var.peers))
    labels   = ["controller-${group.value}"]

    content {
      count = 1

      constraint {
        attribute = "${node.unique.name}"
        value     = var.nodes[group.value]
      }

      # The DLedger store (the controllers' replicated state): sticky keeps
      # it across restarts and updates on the same node.
      ephemeral_disk {
        sticky  = true
        migrate = true
        size    = 300
      }

      network {
        # No `to`: DLedger listens on the port of its own peers entry.
        port "ctl" {
          static = local.ports[group.value]
        }
      }

      service {
        name     = "rmqController${var.cluster}"
        port     = "ctl"
        provider = "consul"
        check {
          type     = "tcp"
          interval = "5s"
          timeout  = "2s"
        }
      }

      # Pinned: a lost node's controller waits for the node to come back;
      # the other two keep the quorum meanwhile.
      reschedule {
        delay          = "10s"
        delay_function = "constant"
        unlimited      = true
      }

      task "controller" {
        driver = "rocketmq"

        config {
          image = var.image
          args  = ["mqcontroller"]
          ports = ["ctl"]

          rocketmq {
            cluster = var.cluster
            role    = "controller"
            port    = "ctl"
            peers   = var.peers
          }
        }

        env {
          ROCKETMQ_JAVA_HEAP_OPTS = var.heap
        }

        resources {
          cpu    = 100
          memory = 256
        }
      }
    }
  }
}
