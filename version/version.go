// Package version holds the plugin's version, set at link time with
// -ldflags "-X github.com/rmqnomad/rocketmq-nomad-driver/version.Version=...".
package version

// Version is the plugin version. It is only written by the linker.
var Version = "0.1.0-dev"
