# Public/test mode, gRPC proxies for RocketMQ 5.x clients. Before each proxy
# starts, the driver registers this host's private IP and the task's port as
# a backend of the cluster's gRPC VServer (a TCP listener on the public ULB,
# e.g. frontend port 8081), releases the backend a previous allocation of the
# same slot left, and releases its own first thing on stop: tenants use one
# stable EIP:8081 as the SDK's Endpoints. Same reconcile, ownership and
# garbage-collection rules as the NameServer backends (owner role "proxy").
#
# Run it after the cluster's brokers: a proxy creates its system topic on the
# cluster's brokers at start and exits when there is none yet (the restart
# block below tries again). See docs/proxy.md.
variable "image" {
  type    = string
  default = "rmq-nomad/rocketmq:5.3.3"
}
variable "cluster" {
  type    = string
  default = "pub"
}
variable "nsaddr" {
  # host:port of the NameServer address endpoint, reachable from inside the
  # proxy's container; the proxy asks http://<nsaddr>/rocketmq/<cluster>.
  type    = string
  default = "172.17.0.1:18080"
}
variable "ulb_id" {
  type    = string
  default = "ulb-demo"
}
variable "vserver_id" {
  # The gRPC listener (frontend port 8081), not the NameServers' 9876 one.
  type    = string
  default = "vserver-demo-proxy"
}
variable "count" {
  type    = number
  default = 2
}
variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

job "rocketmq-pub-proxy" {
  datacenters = var.datacenters

  group "proxy" {
    count = var.count

    constraint {
      attribute = "${attr.driver.rocketmq.ucloud.status}"
      value     = "ok"
    }

    # One proxy per host where possible: a host's loss leaves the others.
    spread {
      attribute = "${node.unique.id}"
    }

    # A proxy started before any broker of its cluster exits; try again.
    restart {
      attempts = 10
      interval = "10m"
      delay    = "10s"
      mode     = "delay"
    }

    network {
      # The proxy listens on its host port, which the driver registers with
      # the VServer; routes carry the port the client dialled (8081 on the
      # ULB), as the driver sets useEndpointPortFromRequest.
      port "grpc" {}
    }

    service {
      name     = "proxy${var.cluster}"
      port     = "grpc"
      provider = "consul"
      check {
        type     = "tcp"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "proxy" {
      driver = "rocketmq"

      # The proxy finishes in-flight calls on SIGTERM.
      kill_timeout = "10s"

      config {
        image = var.image
        args  = ["proxy"]
        ports = ["grpc"]

        rocketmq {
          cluster = var.cluster
          role    = "proxy"
          mode    = "public" # or "test"
          port    = "grpc"
          ulb {
            ulb_id     = var.ulb_id
            vserver_id = var.vserver_id
          }
        }
      }

      env {
        # Where the proxy finds its NameServers (never NAMESRV_ADDR: a fixed
        # list turns the lookup off). The subgroup defaults to the cluster.
        ROCKETMQ_NAMESRV_DOMAIN = var.nsaddr
      }

      resources {
        cpu    = 300
        memory = 400
      }
    }
  }
}
