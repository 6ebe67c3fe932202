package driver

import (
	"fmt"
	"time"

	"github.com/hashicorp/nomad/helper/pluginutils/hclspecutils"
	"github.com/hashicorp/nomad/helper/pluginutils/hclutils"
	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/shared/hclspec"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
)

// splitPluginConfig separates our plugin config from the `docker` block. It
// returns our config, the docker driver's config (msgpack, ready for its
// SetConfig, with docker's own dangling-container reaper turned off) and the
// settings of our label-scoped reaper.
func splitPluginConfig(raw []byte, dockerSpec *hclspec.Spec) (*PluginConfig, []byte, reaperConfig, error) {
	var ours PluginConfig
	var all map[string]interface{}
	if len(raw) != 0 {
		if err := base.MsgPackDecode(raw, &ours); err != nil {
			return nil, nil, reaperConfig{}, fmt.Errorf("failed to decode plugin config: %w", err)
		}
		if err := base.MsgPackDecode(raw, &all); err != nil {
			return nil, nil, reaperConfig{}, fmt.Errorf("failed to decode plugin config: %w", err)
		}
	}

	dockerCfg, _ := all["docker"].(map[string]interface{})
	if dockerCfg == nil {
		// No docker block: docker's defaults, as if `docker {}` were given.
		defaults, err := specDefaults(dockerSpec)
		if err != nil {
			return nil, nil, reaperConfig{}, err
		}
		dockerCfg = defaults
	}

	reaper, err := takeReaperConfig(dockerCfg)
	if err != nil {
		return nil, nil, reaperConfig{}, err
	}

	var out []byte
	if err := base.MsgPackEncode(&out, dockerCfg); err != nil {
		return nil, nil, reaperConfig{}, fmt.Errorf("failed to encode docker config: %w", err)
	}
	return &ours, out, reaper, nil
}

// specDefaults decodes an empty body against spec and returns the result as
// a generic map, the way the Nomad client would hand it to the plugin.
func specDefaults(spec *hclspec.Spec) (map[string]interface{}, error) {
	dec, diags := hclspecutils.Convert(spec)
	if diags.HasErrors() {
		return nil, fmt.Errorf("failed to convert docker config schema: %s", diags.Error())
	}
	val, diags, errs := hclutils.ParseHclInterface(map[string]interface{}{}, dec, nil)
	if diags.HasErrors() || len(errs) > 0 {
		return nil, fmt.Errorf("failed to compute docker config defaults: %v %v", diags, errs)
	}
	data, err := ctymsgpack.Marshal(val, val.Type())
	if err != nil {
		return nil, fmt.Errorf("failed to encode docker config defaults: %w", err)
	}
	var m map[string]interface{}
	if err := base.MsgPackDecode(data, &m); err != nil {
		return nil, fmt.Errorf("failed to decode docker config defaults: %w", err)
	}
	return m, nil
}

// takeReaperConfig reads docker.gc.dangling_containers into our reaper's
// settings and switches docker's own reaper off: docker's reaper removes every
// Nomad container its own instance does not track, which includes the
// built-in docker driver's containers.
func takeReaperConfig(dockerCfg map[string]interface{}) (reaperConfig, error) {
	rc := reaperConfig{Enabled: true, Period: 5 * time.Minute, CreationGrace: 5 * time.Minute}

	gc, _ := dockerCfg["gc"].(map[string]interface{})
	if gc == nil {
		gc = map[string]interface{}{}
		dockerCfg["gc"] = gc
	}
	dc, _ := gc["dangling_containers"].(map[string]interface{})
	if dc == nil {
		dc = map[string]interface{}{}
		gc["dangling_containers"] = dc
	}
	if v, ok := dc["enabled"].(bool); ok {
		rc.Enabled = v
	}
	if v, ok := dc["dry_run"].(bool); ok {
		rc.DryRun = v
	}
	for _, f := range []struct {
		key string
		dst *time.Duration
	}{{"period", &rc.Period}, {"creation_grace", &rc.CreationGrace}} {
		s, _ := dc[f.key].(string)
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return rc, fmt.Errorf("docker.gc.dangling_containers.%s: %q is not a positive duration, e.g. \"5m\"", f.key, s)
		}
		*f.dst = d
	}
	if rc.CreationGrace < minCreationGrace {
		return rc, fmt.Errorf("docker.gc.dangling_containers.creation_grace: %s is below the minimum %s", rc.CreationGrace, minCreationGrace)
	}

	dc["enabled"] = false
	dc["creation_grace"] = "5m"
	dc["period"] = "5m"
	return rc, nil
}
