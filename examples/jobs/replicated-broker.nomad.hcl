# A replicated broker group (RocketMQ controller mode): one replica of one
# broker name per entry of `listen_ports`, on distinct hosts. The controllers
# (replicated-controller.nomad.hcl) elect the master from the group's
# SyncStateSet; the others replicate from it. An acknowledged message is on
# every replica of the SyncStateSet and on at least min_in_sync_replicas of
# them, so losing any one host loses no acknowledged message.
#
# Static ports: RocketMQ serves a broker's fast channel at listenPort-2, with
# no setting to move it, and a slave reads the master's topics there
# (brokerIP1:listenPort-2). Nomad cannot hand out two dynamic ports two apart,
# so each replica gets static ports: listenPort, listenPort-2 and its HA
# port. With one replica per host (distinct_hosts, job-wide), all replicas
# can use the same numbers; a second group on the same hosts needs others.
# One task group per replica keeps each replica's ports its own.
#
# The driver writes into local/rocketmq/broker.conf, besides brokerIP1 and
# listenPort: brokerIP2 (this host's private IP, also in public mode) and
# haListenPort (the host port of "ha"), enableControllerMode, controllerAddr,
# brokerId=-1, brokerRole=SLAVE, allAckInSyncStateSet=true and
# minInSyncReplicas. A replica that comes back with an empty store (a lost
# host) gets a new broker id from the controllers and rejoins as a slave.
#
# Sizing: 3 replicas (entries of listen_ports) with min_in_sync_replicas = 2 keep accepting writes
# with one replica down and refuse them (the producer gets an error, never
# a false ack) with two down. 2 replicas with min 2 stop writes whenever
# one is down; with min 1 an ack may be on one host only. Disk and network
# scale with the replica count: every message is written `count` times.
variable "image" {
  type    = string
  default = "rmq-nomad/rocketmq:5.3.3"
}
variable "cluster" {
  type    = string
  default = "demo"
}
variable "broker_name" {
  # The group's broker name: the same for all its replicas. Run one job per
  # group (broker-0, broker-1, ...) to spread topics over several masters.
  type    = string
  default = "broker-0"
}
variable "controllers" {
  # The controllers' peers list (replicated-controller.nomad.hcl).
  type    = list(string)
  default = ["10.0.0.11:9878", "10.0.0.12:9878", "10.0.0.13:9878"]
}
variable "listen_ports" {
  # One entry per replica: its listenPort (static); listenPort-2 is taken
  # too (the fast channel).
  type    = list(number)
  default = [30911, 30911, 30911]
}
variable "ha_ports" {
  # One entry per replica: the port slaves replicate from (haListenPort).
  type    = list(number)
  default = [30912, 30912, 30912]
}
variable "min_in_sync_replicas" {
  # Replicas (the master included) a message must be on before the
  # producer gets its ack.
  type    = number
  default = 2
}
variable "nsaddr" {
  # host:port of the NameServer address endpoint, reachable from inside
  # the broker's container.
  type    = string
  default = "172.17.0.1:18080"
}
variable "node_regexp" {
  # Which nodes may run a replica (node.unique.name); ".*" is any node.
  type    = string
  default = ".*"
}
variable "heap" {
  type    = string
  default = "-Xms256m -Xmx256m -XX:MaxDirectMemorySize=128m"
}
variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

job "rocketmq-replicated-broker" {
  datacenters = var.datacenters

  # One replica per host, across the job's groups: a host's death takes
  # one replica only.
  constraint {
    operator = "distinct_hosts"
    value    = "true"
  }
  constraint {
    attribute = "${node.unique.name}"
    operator  = "regexp"
    value     = var.node_regexp
  }

  dynamic "group" {
    for_each = range(length(var.listen_ports))
    labels   = ["replica-${group.value}"]

    content {
      count = 1

      # A drained replica's store moves with it (migrate), and a restarted
      # one keeps it (sticky): it rejoins with its broker id and only
      # catches up the gap. A lost host loses its store; the replacement
      # starts empty and copies everything from the master.
      ephemeral_disk {
        sticky  = true
        migrate = true
        size    = 4096
      }

      network {
        # No `to`: the broker listens on the host ports it advertises.
        port "rmq" {
          static = var.listen_ports[group.value]
        }
        port "fast" {
          static = var.listen_ports[group.value] - 2
        }
        port "ha" {
          static = var.ha_ports[group.value]
        }
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

      # Replace a lost replica soon and forever: until it is back, the
      # group runs with one replica less (and with min_in_sync_replicas
      # equal to the replica count, refuses writes).
      reschedule {
        delay          = "5s"
        delay_function = "constant"
        unlimited      = true
      }

      task "broker" {
        driver = "rocketmq"

        # A broker needs ~10 s to flush and shut down cleanly (default 5 s).
        kill_timeout = "15s"

        config {
          image = var.image
          args  = ["broker"]
          ports = ["rmq", "fast", "ha"]

          rocketmq {
            cluster              = var.cluster
            role                 = "broker"
            mode                 = "private"
            port                 = "rmq"
            fast_port            = "fast"
            ha_port              = "ha"
            controllers          = var.controllers
            min_in_sync_replicas = var.min_in_sync_replicas
          }
        }

        env {
          ROCKETMQ_BROKER_NAME      = var.broker_name
          ROCKETMQ_NAMESRV_DOMAIN   = var.nsaddr
          ROCKETMQ_NAMESRV_SUBGROUP = var.cluster
          ROCKETMQ_JAVA_HEAP_OPTS   = var.heap
        }

        resources {
          cpu    = 300
          memory = 600
        }
      }
    }
  }
}
