//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/helper/pluginutils/hclspecutils"
	"github.com/hashicorp/nomad/helper/pluginutils/hclutils"
	"github.com/hashicorp/nomad/plugins/base"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	"github.com/rmqnomad/rocketmq-nomad-driver/driver"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestExamplesValidate: every example job passes `nomad job validate`, and
// every rocketmq task's config decodes against the driver's own schema and
// passes its validation, so the examples cannot drift from the code.
func TestExamplesValidate(t *testing.T) {
	bin := testutil.NomadBinary()
	if bin == "" {
		t.Skip("SKIPPED: no nomad binary; run make test")
	}
	d := driver.New(context.Background(), hclog.NewNullLogger())
	spec, err := d.TaskConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	dec, diags := hclspecutils.Convert(spec)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	files, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "examples", "jobs", "*.nomad.hcl"))
	if len(files) < 4 {
		t.Fatalf("expected the example jobs, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cmd := exec.Command(bin, "job", "validate", f)
			cmd.Env = []string{"NOMAD_ADDR=http://127.0.0.1:1", "HOME=" + t.TempDir()}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nomad job validate: %v\n%s", err, out)
			}
			out, err := exec.Command(bin, "job", "run", "-output", f).Output()
			if err != nil {
				t.Fatalf("nomad job run -output: %v", err)
			}
			var job struct {
				Job struct {
					TaskGroups []struct {
						Tasks []struct {
							Name   string
							Driver string
							Config map[string]any
						}
					}
				}
			}
			if err := json.Unmarshal(out, &job); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, g := range job.Job.TaskGroups {
				for _, task := range g.Tasks {
					if task.Driver != "rocketmq" {
						continue
					}
					n++
					val, diags, errs := hclutils.ParseHclInterface(task.Config, dec, nil)
					if diags.HasErrors() || len(errs) > 0 {
						t.Fatalf("task %s config does not match the driver schema: %v %v", task.Name, diags, errs)
					}
					raw, err := ctymsgpack.Marshal(val, val.Type())
					if err != nil {
						t.Fatal(err)
					}
					var tc driver.TaskConfig
					if err := base.MsgPackDecode(raw, &tc); err != nil {
						t.Fatal(err)
					}
					if err := tc.RocketMQ.Validate(); err != nil {
						t.Fatalf("task %s: %v", task.Name, err)
					}
				}
			}
			if n == 0 {
				t.Fatalf("no rocketmq task in %s", f)
			}
		})
	}
}
