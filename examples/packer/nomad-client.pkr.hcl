# Packer template for a UCloud Nomad client image with the rocketmq driver
# plugin baked into the client's plugin_dir. Build the plugin first
# (`make build`), then:
#
#   packer init examples/packer
#   packer build -var ucloud_project_id=org-xxx examples/packer
#
# Packer's own UCloud credentials, UCLOUD_PUBLIC_KEY / UCLOUD_PRIVATE_KEY,
# come from the environment of `packer build`. Do not bake the plugin's keys
# into the image: write them at boot to the files the client config names
# (private_key_file, chmod 600), or into the Nomad unit's environment. The
# plugin is installed by scripts/install.sh, the same script `make install`
# and the e2e tests use, so what the image gets is what the tests ran.
packer {
  required_plugins {
    ucloud = {
      source  = "github.com/ucloud/ucloud"
      version = ">= 1.0.8"
    }
  }
}

variable "ucloud_project_id" {
  type = string
}
variable "region" {
  type    = string
  default = "cn-bj2"
}
variable "availability_zone" {
  type    = string
  default = "cn-bj2-02"
}
variable "source_image_id" {
  # A Debian or Ubuntu image that already has Nomad and Docker, e.g. your
  # existing Nomad client image.
  type    = string
  default = "uimage-xxxxxx"
}
variable "plugin_dir" {
  type    = string
  default = "/opt/nomad/plugins"
}

source "ucloud-uhost" "nomad_client" {
  project_id        = var.ucloud_project_id
  region            = var.region
  availability_zone = var.availability_zone
  instance_type     = "n-basic-2"
  source_image_id   = var.source_image_id
  ssh_username      = "root"
  image_name        = "nomad-client-rocketmq-{{timestamp}}"
}

build {
  sources = ["source.ucloud-uhost.nomad_client"]

  provisioner "file" {
    source      = "bin/rmq-driver"
    destination = "/tmp/rmq-driver"
  }
  provisioner "file" {
    source      = "scripts/install.sh"
    destination = "/tmp/install-rmq-driver.sh"
  }
  provisioner "file" {
    source      = "examples/jobs/client.hcl"
    destination = "/etc/nomad.d/rocketmq-client.hcl.example"
  }
  provisioner "shell" {
    inline = [
      "bash /tmp/install-rmq-driver.sh /tmp/rmq-driver ${var.plugin_dir}",
      "rm -f /tmp/rmq-driver /tmp/install-rmq-driver.sh",
    ]
  }
}
