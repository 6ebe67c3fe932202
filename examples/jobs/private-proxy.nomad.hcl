# Private mode, gRPC proxies for RocketMQ 5.x clients: no public IPs. Each
# proxy registers the Consul service proxy<cluster> (host IP + dynamic port).
# The stable address clients use as the SDK's Endpoints is one of:
#
#   - an internal ULB VServer (uncomment the ulb block): the driver registers
#     each proxy as its backend exactly as in public mode (reconcile,
#     ownership, garbage collection); clients use <internal ULB IP>:8081.
#     Needs the plugin's ucloud block on these nodes.
#   - without UCloud: the list of passing proxies, served from Consul by an
#     address endpoint for the proxy service,
#       rmq-driver nsaddr -listen :18082 -service-name 'proxy{{cluster}}'
#     at GET /rocketmq/<cluster> ("ip:port;ip:port"), which a client passes
#     as its Endpoints at start (it then survives a proxy's death, not a
#     move of all of them).
#
# Run it after the cluster's brokers (see public-proxy.nomad.hcl). See
# docs/proxy.md.
variable "image" {
  type    = string
  default = "rmq-nomad/rocketmq:5.3.3"
}
variable "cluster" {
  type    = string
  default = "demo"
}
variable "nsaddr" {
  # host:port of the NameServer address endpoint, reachable from inside the
  # proxy's container.
  type    = string
  default = "172.17.0.1:18080"
}
variable "count" {
  type    = number
  default = 2
}
variable "node_regexp" {
  type    = string
  default = ".*"
}
variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

job "rocketmq-proxy" {
  datacenters = var.datacenters

  group "proxy" {
    count = var.count

    constraint {
      attribute = "${node.unique.name}"
      operator  = "regexp"
      value     = var.node_regexp
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
      port "grpc" {}
    }

    # The proxy list's feed: passing instances only.
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
      driver       = "rocketmq"
      kill_timeout = "10s"

      config {
        image = var.image
        args  = ["proxy"]
        ports = ["grpc"]

        rocketmq {
          cluster = var.cluster
          role    = "proxy"
          mode    = "private"
          port    = "grpc"
          # ulb {                       # an internal ULB, the stable address
          #   ulb_id     = "ulb-xxxx"
          #   vserver_id = "vserver-xxxx"
          # }
        }
      }

      env {
        ROCKETMQ_NAMESRV_DOMAIN = var.nsaddr
      }

      resources {
        cpu    = 300
        memory = 400
      }
    }
  }
}
