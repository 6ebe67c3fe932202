# One tenant's RocketMQ cluster in public mode: the cloud resources the
# rocketmq driver binds at run time, and the Consul KV records the broker
# job reads, in the seed's layout. Nothing here binds an EIP to a host or
# registers a backend: the driver does that before each task starts.

locals {
  name      = "rmq-${var.cluster}"
  remark    = "${var.eip_remark_prefix}${var.cluster}"
  namespace = var.nomad_namespace != "" ? var.nomad_namespace : var.cluster
}

# One EIP per broker. The driver binds EIP <i> to the host that runs broker
# allocation <i> and the broker advertises it; the bandwidth cap is the
# tenant's throughput limit.
resource "ucloud_eip" "broker" {
  count = var.broker_count

  name          = "${local.name}-broker-${count.index}"
  internet_type = var.internet_type
  bandwidth     = var.broker_bandwidth
  charge_type   = var.charge_type
  charge_mode   = var.charge_mode
  duration      = var.duration
  tag           = var.tag
  remark        = "${local.remark} broker-${count.index}"
}

# The public entry point of the NameServers: an internet-facing ULB with its
# own EIP and a TCP listener on namesrv_port. The driver registers each
# NameServer's host and dynamic port as a backend of the listener.
resource "ucloud_lb" "namesrv" {
  name     = "${local.name}-namesrv"
  internal = false
  tag      = var.tag
  # No remark: provider 1.39.2 sends a changed ucloud_lb remark as the tag,
  # which then never stops showing as a change.
}

resource "ucloud_eip" "namesrv" {
  name          = "${local.name}-namesrv"
  internet_type = var.internet_type
  bandwidth     = var.namesrv_bandwidth
  charge_type   = var.charge_type
  charge_mode   = var.charge_mode
  duration      = var.duration
  tag           = var.tag
  remark        = "${local.remark} namesrv"
}

resource "ucloud_eip_association" "namesrv" {
  eip_id      = ucloud_eip.namesrv.id
  resource_id = ucloud_lb.namesrv.id
}

resource "ucloud_lb_listener" "namesrv" {
  load_balancer_id = ucloud_lb.namesrv.id
  name             = "${local.name}-namesrv-${var.namesrv_port}"
  protocol         = "tcp"
  port             = var.namesrv_port
  method           = "roundrobin"
}

# The seed's Consul KV layout (brokerEip/<cluster>/eip/<i> = IP,
# brokerEip/<cluster>/eipId/<i> = id). delete = true, or destroying the
# cluster leaves the keys behind.
resource "consul_keys" "eip_public_ip" {
  count = var.broker_count

  key {
    path   = "brokerEip/${var.cluster}/eip/${count.index}"
    value  = ucloud_eip.broker[count.index].public_ip
    delete = true
  }
}

resource "consul_keys" "eip_id" {
  count = var.broker_count

  key {
    path   = "brokerEip/${var.cluster}/eipId/${count.index}"
    value  = ucloud_eip.broker[count.index].id
    delete = true
  }
}
