output "cluster" {
  value = var.cluster
}

output "nomad_namespace" {
  description = "The namespace to run the tenant's jobs in."
  value       = local.namespace
}

output "broker_eip_ids" {
  description = "EIP of broker <i> (also in Consul at brokerEip/<cluster>/eipId/<i>)."
  value       = ucloud_eip.broker[*].id
}

output "broker_eip_ips" {
  description = "The address broker <i> advertises."
  value       = ucloud_eip.broker[*].public_ip
}

output "ulb_id" {
  description = "public-namesrv.nomad.hcl: -var ulb_id=..."
  value       = ucloud_lb.namesrv.id
}

output "vserver_id" {
  description = "public-namesrv.nomad.hcl: -var vserver_id=..."
  value       = ucloud_lb_listener.namesrv.id
}

output "namesrv_public_address" {
  description = "What the tenant's clients use as namesrvAddr."
  value       = "${ucloud_eip.namesrv.public_ip}:${var.namesrv_port}"
}

output "plugin_allow_list" {
  description = "Lines for the plugin config's ucloud block on the clients that may run this tenant (merge the lists of every tenant those clients serve)."
  value       = <<-EOT
    allowed_eip_ids   = ${jsonencode(ucloud_eip.broker[*].id)}
    allowed_ulb_ids   = ${jsonencode([ucloud_lb.namesrv.id])}
    eip_remark_prefix = ${jsonencode(var.eip_remark_prefix)}
  EOT
}

output "nomad_job_run" {
  description = "The commands that start the cluster (from the repository root; add -var image=... and -var nsaddr=... as needed)."
  value       = <<-EOT
    nomad namespace apply ${local.namespace}
    nomad job run -namespace=${local.namespace} -var cluster=${var.cluster} -var ulb_id=${ucloud_lb.namesrv.id} -var vserver_id=${ucloud_lb_listener.namesrv.id} examples/jobs/public-namesrv.nomad.hcl
    nomad job run -namespace=${local.namespace} -var cluster=${var.cluster} -var count=${var.broker_count} examples/jobs/public-broker.nomad.hcl
  EOT
}
