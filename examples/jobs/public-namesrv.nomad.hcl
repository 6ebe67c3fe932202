# Public/test mode, NameServers: before each NameServer starts, the driver
# registers this host's private IP and the task's dynamic port as a backend
# of the ULB VServer (the public entry point on port 9876), releases the
# backend a previous allocation of the same slot left, and releases its own
# on stop.
variable "image" {
  type    = string
  default = "rmq-nomad/rocketmq:5.3.3"
}
variable "cluster" {
  type    = string
  default = "pub"
}
variable "ulb_id" {
  type    = string
  default = "ulb-demo"
}
variable "vserver_id" {
  type    = string
  default = "vserver-demo-ns"
}
variable "count" {
  type    = number
  default = 2
}
variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

job "rocketmq-pub-namesrv" {
  datacenters = var.datacenters

  group "namesrv" {
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
          mode    = "public" # or "test"
          port    = "rmq"
          ulb {
            ulb_id     = var.ulb_id
            vserver_id = var.vserver_id
          }
        }
      }

      resources {
        cpu    = 200
        memory = 300
      }
    }
  }
}
