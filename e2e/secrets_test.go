//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// demoPrivateKey is the simulator account's key (examples/ucloudsim/demo.json).
const demoPrivateKey = "demo-private-key-not-a-secret"

// secretFile writes a secret into a file of its own (mode 600), the way
// docs/reference.md tells operators to, and returns its path.
func secretFile(t *testing.T, name, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAgentSelfShowsNoSecrets: Nomad serves the plugin config block
// unredacted at /v1/agent/self. A client configured the documented way
// (private_key_file, token_file) shows paths there and no key material, and
// its keys work (the simulator checks every signature). A client with the
// secrets inline (the control) shows them there: which is why the plugin
// warns about it and names the fields in an attribute.
func TestAgentSelfShowsNoSecrets(t *testing.T) {
	e := setup(t)
	state, err := ucloudsim.LoadState(filepath.Join(testutil.RepoRoot(t), "examples", "ucloudsim", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	sim := simtest.Start(t, ucloudsim.Config{State: state}).Sim
	consul := testutil.StartConsul(t)
	const token = "e2e-consul-token-0c4f7a"
	keyFile := secretFile(t, "ucloud-private-key", demoPrivateKey)
	tokenFile := secretFile(t, "consul-token", token)

	hcl := func(i int) string {
		key := fmt.Sprintf("private_key_file  = %q", keyFile)
		tok := fmt.Sprintf("token_file = %q", tokenFile)
		if i == 1 {
			key = fmt.Sprintf("private_key       = %q", demoPrivateKey)
			tok = fmt.Sprintf("token      = %q", token)
		}
		return fmt.Sprintf(`
plugin "rmq-driver" {
  config {
    ucloud {
      region            = "cn-bj2"
      project_id        = "org-demo"
      public_key        = "demo-public-key"
      %s
      base_url          = %q
      metadata_endpoint = %q
    }
    consul {
      address    = %q
      %s
    }
  }
}
plugin "docker" {
  config {
    gc {
      dangling_containers {
        enabled = false
      }
    }
  }
}
`, key, sim.URL(), sim.MetadataURL(demoHosts[i]), consul.HTTPAddr, tok)
	}
	nomad := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, Clients: 2, ClientHCL: hcl, ConsulAddr: consul.HTTPAddr})

	secrets := []string{demoPrivateKey, token}
	leaks := func(s string) []string {
		var out []string
		for _, x := range secrets {
			if strings.Contains(s, x) {
				out = append(out, x)
			}
		}
		return out
	}

	// /v1/agent/self of each client.
	for i, a := range nomad.Clients {
		body := getBody(t, "http://"+a.HTTPAddr+"/v1/agent/self")
		if !strings.Contains(body, "rmq-driver") {
			t.Fatalf("%s: /v1/agent/self has no rmq-driver plugin block; the check below would prove nothing:\n%s", a.Name, body)
		}
		switch i {
		case 0:
			if l := leaks(body); len(l) > 0 {
				t.Errorf("%s (file-based config): /v1/agent/self contains %d secret(s)", a.Name, len(l))
			}
			if !strings.Contains(body, keyFile) || !strings.Contains(body, tokenFile) {
				t.Errorf("%s: /v1/agent/self does not show the secret file paths", a.Name)
			}
		case 1:
			// The control: inline secrets are there for anyone with
			// agent:read, so the search above can find them.
			if l := leaks(body); len(l) != len(secrets) {
				t.Errorf("%s (inline config, control): /v1/agent/self shows %d of %d secrets; the leak check is blind", a.Name, len(l), len(secrets))
			}
		}
	}

	// Both clients' keys work (a wrong key reads "misconfigured"), and
	// the inline one is reported by name.
	attrs := map[string]map[string]string{}
	waitFor(t, 60*time.Second, "both clients report driver.rocketmq.ucloud.status = ok", func() bool {
		var nodes []struct{ ID, Name string }
		if err := nomad.GetJSON("/v1/nodes", &nodes); err != nil {
			return false
		}
		ok := 0
		for _, n := range nodes {
			var node struct{ Attributes map[string]string }
			if err := nomad.GetJSON("/v1/node/"+n.ID, &node); err != nil {
				return false
			}
			attrs[n.Name] = node.Attributes
			if node.Attributes["driver.rocketmq.ucloud.status"] == "ok" {
				ok++
			}
		}
		return ok == 2
	})
	if got := attrs["client-1"]["driver.rocketmq.config.inline_secrets"]; got != "ucloud.private_key,consul.token" {
		t.Errorf("client-1: driver.rocketmq.config.inline_secrets = %q", got)
	}
	if got, ok := attrs["client-0"]["driver.rocketmq.config.inline_secrets"]; ok {
		t.Errorf("client-0 (file-based): driver.rocketmq.config.inline_secrets = %q", got)
	}
	for name, as := range attrs {
		for k, v := range as {
			if l := leaks(v); len(l) > 0 {
				t.Errorf("%s: attribute %s contains a secret", name, k)
			}
		}
	}

	// Logs: the file-based client's log holds neither secret; the inline
	// client warns once, naming the fields, not the values.
	if l := leaks(nomad.Clients[0].LogTail(100000)); len(l) > 0 {
		t.Errorf("client-0 agent log contains %d secret(s)", len(l))
	}
	var warns []string
	for _, line := range strings.Split(nomad.Clients[1].LogTail(100000), "\n") {
		if strings.Contains(line, "secrets are set inline") {
			warns = append(warns, line)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "ucloud.private_key_file") || !strings.Contains(warns[0], "consul.token_file") {
		t.Errorf("client-1: want one warning naming the file fields, got %q", warns)
	}
	for _, w := range warns {
		if l := leaks(w); len(l) > 0 {
			t.Errorf("client-1: the inline-secrets warning contains a secret")
		}
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}
