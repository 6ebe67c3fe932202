# Nomad client agent config for RocketMQ hosts on UCloud. Install the plugin
# into plugin_dir first: `make install PLUGIN_DIR=/opt/nomad/plugins`.
plugin_dir = "/opt/nomad/plugins"

client {
  enabled = true
}

# Keyed by the executable's name in plugin_dir.
plugin "rmq-driver" {
  config {
    # Nomad's docker driver settings, passed through. gc.dangling_containers
    # drives this plugin's own label-scoped reaper (docker's is always off).
    docker {
      volumes {
        enabled = true
      }
    }

    # UCloud access for public/test mode. The host's UHost id and private
    # IP are read from the instance metadata service (http://100.80.80.80).
    #
    # Keys: never inline. Nomad shows this block unredacted at
    # /v1/agent/self; an inline private_key is logged as a warning and
    # reported in driver.rocketmq.config.inline_secrets. Use a file (one
    # line, chmod 600, read at client start), or leave both key fields out
    # and set UCLOUD_PUBLIC_KEY / UCLOUD_PRIVATE_KEY in the Nomad client's
    # environment (e.g. an EnvironmentFile= of its systemd unit).
    ucloud {
      region           = "cn-bj2"
      project_id       = "org-xxxxxx"
      public_key_file  = "/etc/nomad.d/ucloud-public-key"
      private_key_file = "/etc/nomad.d/ucloud-private-key"

      # Only these may be touched from this client (tenancy guard).
      allowed_eip_ids = ["eip-aaaa", "eip-bbbb", "eip-cccc"]
      allowed_ulb_ids = ["ulb-xxxx"]

      # On a client shared by several teams, each Nomad namespace gets its
      # own EIPs and ULBs (a namespace without a block is refused).
      # tenant "team-a" {
      #   allowed_eip_ids = ["eip-aaaa", "eip-bbbb", "eip-cccc"]
      #   allowed_ulb_ids = ["ulb-xxxx"]
      # }
    }

    consul {
      address = "127.0.0.1:8500"
      # With Consul ACLs: the token in a file (or CONSUL_HTTP_TOKEN in the
      # environment), never `token = "..."` inline.
      # token_file = "/etc/nomad.d/consul-token"
    }

    # The NameServer address endpoint, for private mode clients and
    # brokers: GET http://<host>:8080/rocketmq/<cluster>.
    nsaddr {
      enabled         = true
      listen          = ":8080"
      default_cluster = ""
    }

    # The local Nomad agent's API: a binding is only taken over or
    # collected once Nomad says its allocation has ended. With Nomad ACLs,
    # a token with read-job on the namespaces running rocketmq tasks.
    nomad {
      address = "http://127.0.0.1:4646"
      # token_file = "/etc/nomad.d/nomad-token"
    }

    # Bindings are re-checked and drift repaired this often; one client
    # (elected) collects bindings of ended allocations this often.
    reconcile_interval = "30s"
    collect_interval   = "1m"

    metrics_listen = "127.0.0.1:9176"
  }
}

# If the built-in docker driver stays enabled on these hosts, its reaper
# must be off, or it removes rocketmq containers (README: "Running beside
# the built-in docker driver").
plugin "docker" {
  config {
    gc {
      dangling_containers {
        enabled = false
      }
    }
  }
}
