# The smallest rocketmq-driver job: one broker-shaped task in private mode.
# It runs any image; the driver tells the process which address to
# advertise through ROCKETMQ_ADVERTISED_IP / ROCKETMQ_ADVERTISED_PORT and
# writes local/rocketmq/broker.conf (brokerIP1, listenPort).
job "hello" {
  datacenters = ["dc1"]

  group "broker" {
    network {
      # A broker must listen on its host port: RocketMQ advertises
      # brokerIP1:listenPort and has no separate "advertised port".
      port "rmq" {}
    }

    task "broker" {
      driver = "rocketmq"

      # A broker needs ~10 s to flush and shut down cleanly (default 5 s).
      kill_timeout = "15s"

      config {
        # Every option of Nomad's docker driver works here.
        image = "rmq-nomad/rocketmq:5.3.3"
        args  = ["broker"]
        ports = ["rmq"]

        rocketmq {
          cluster = "hello"
          role    = "broker"
          mode    = "private"
          port    = "rmq"
        }
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
