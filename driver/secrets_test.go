package driver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/drivers"
	pstructs "github.com/hashicorp/nomad/plugins/shared/structs"
)

const (
	testPrivateKey = "PRIVKEY-5f1c9a0e-do-not-print"
	testToken      = "TOKEN-77d2b6c4-do-not-print"
)

// lockedBuffer is a log sink safe for the driver's goroutines and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveSecrets(t *testing.T) {
	keyFile := writeFile(t, "key", testPrivateKey+"\n")
	pubFile := writeFile(t, "pub", "public-from-file\r\n")
	tokenFile := writeFile(t, "token", testToken+"\n")
	emptyFile := writeFile(t, "empty", "\n")
	twoLines := writeFile(t, "two", testPrivateKey+"\nsecond-"+testPrivateKey+"\n")
	missing := filepath.Join(t.TempDir(), "missing")

	cases := []struct {
		name       string
		in         PluginConfig
		want       PluginConfig // keys and token after resolution
		wantInline []string
		wantErr    []string // substrings of the error
	}{
		{
			name: "files are read and trimmed",
			in: PluginConfig{UCloud: &UCloudConfig{PrivateKeyFile: keyFile, PublicKeyFile: pubFile},
				Consul: &ConsulConfig{TokenFile: tokenFile}},
			want: PluginConfig{UCloud: &UCloudConfig{PrivateKey: testPrivateKey, PublicKey: "public-from-file"},
				Consul: &ConsulConfig{Token: testToken}},
		},
		{
			name:       "inline secrets are reported by name, the public key is not a secret",
			in:         PluginConfig{UCloud: &UCloudConfig{PrivateKey: testPrivateKey, PublicKey: "pub"}, Consul: &ConsulConfig{Token: testToken}},
			want:       PluginConfig{UCloud: &UCloudConfig{PrivateKey: testPrivateKey, PublicKey: "pub"}, Consul: &ConsulConfig{Token: testToken}},
			wantInline: []string{"ucloud.private_key", "consul.token"},
		},
		{
			name: "no blocks, nothing to do",
			in:   PluginConfig{},
			want: PluginConfig{},
		},
		{
			name:    "inline and file of the same key",
			in:      PluginConfig{UCloud: &UCloudConfig{PrivateKey: testPrivateKey, PrivateKeyFile: keyFile}},
			wantErr: []string{"ucloud.private_key and ucloud.private_key_file are both set", "UCLOUD_PRIVATE_KEY"},
		},
		{
			name:    "inline and file of the consul token",
			in:      PluginConfig{Consul: &ConsulConfig{Token: testToken, TokenFile: tokenFile}},
			wantErr: []string{"consul.token and consul.token_file are both set", "CONSUL_HTTP_TOKEN"},
		},
		{
			name:    "missing file",
			in:      PluginConfig{UCloud: &UCloudConfig{PrivateKeyFile: missing}},
			wantErr: []string{"ucloud.private_key_file: cannot read the file", missing},
		},
		{
			name:    "empty file",
			in:      PluginConfig{Consul: &ConsulConfig{TokenFile: emptyFile}},
			wantErr: []string{"consul.token_file", "is empty"},
		},
		{
			name:    "two lines",
			in:      PluginConfig{UCloud: &UCloudConfig{PrivateKeyFile: twoLines}},
			wantErr: []string{"ucloud.private_key_file", "more than one line"},
		},
		{
			name:    "every problem is reported at once",
			in:      PluginConfig{UCloud: &UCloudConfig{PrivateKeyFile: missing}, Consul: &ConsulConfig{TokenFile: emptyFile}},
			wantErr: []string{"ucloud.private_key_file", "consul.token_file"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprintf("%#v %#v", tc.in.UCloud, tc.in.Consul)
			var inFiles []string
			if tc.in.UCloud != nil {
				inFiles = append(inFiles, tc.in.UCloud.PrivateKeyFile)
			}
			got, inline, err := resolveSecrets(&tc.in)
			if tc.in.UCloud != nil && tc.in.UCloud.PrivateKeyFile != inFiles[0] {
				t.Fatalf("resolveSecrets changed its input")
			}
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want an error mentioning %q, got none", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q does not mention %q", err, w)
					}
				}
				if strings.Contains(err.Error(), testPrivateKey) || strings.Contains(err.Error(), testToken) {
					t.Fatalf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(inline, ",") != strings.Join(tc.wantInline, ",") {
				t.Fatalf("inline = %v, want %v", inline, tc.wantInline)
			}
			if (got.UCloud == nil) != (tc.want.UCloud == nil) || (got.Consul == nil) != (tc.want.Consul == nil) {
				t.Fatalf("blocks: got %v %v, want %v %v", got.UCloud, got.Consul, tc.want.UCloud, tc.want.Consul)
			}
			if u := got.UCloud; u != nil {
				if u.PrivateKey != tc.want.UCloud.PrivateKey || u.PublicKey != tc.want.UCloud.PublicKey || u.PrivateKeyFile != "" || u.PublicKeyFile != "" {
					t.Fatalf("ucloud keys not resolved as wanted (private key equal: %v, public key %q)", u.PrivateKey == tc.want.UCloud.PrivateKey, u.PublicKey)
				}
			}
			if c := got.Consul; c != nil && (c.Token != tc.want.Consul.Token || c.TokenFile != "") {
				t.Fatalf("consul token not resolved as wanted (equal: %v, token_file %q)", c.Token == tc.want.Consul.Token, c.TokenFile)
			}
			if after := fmt.Sprintf("%#v %#v", tc.in.UCloud, tc.in.Consul); after != before {
				t.Fatalf("input changed: %s -> %s", before, after)
			}
		})
	}
}

// Formatting a block, as a careless log line would, never shows a secret.
func TestConfigBlocksFormatRedacted(t *testing.T) {
	u := &UCloudConfig{Region: "cn-bj2", PublicKey: "pub", PrivateKey: testPrivateKey}
	c := &ConsulConfig{Address: "127.0.0.1:8500", Token: testToken}
	for _, s := range []string{fmt.Sprint(u), fmt.Sprintf("%v %+v %#v", *u, u, u), fmt.Sprintf("%v %+v %#v", *c, c, c), fmt.Sprintf("%+v", PluginConfig{UCloud: u, Consul: c})} {
		if strings.Contains(s, testPrivateKey) || strings.Contains(s, testToken) {
			t.Fatalf("formatted config leaks a secret: %s", s)
		}
		if !strings.Contains(s, "set") {
			t.Fatalf("formatted config does not say the secret is set: %s", s)
		}
	}
}

// setConfig runs the driver's SetConfig on an HCL plugin config body, as
// the Nomad client does (agent config set: the instance that runs tasks).
func setConfig(t *testing.T, d *Driver, body string) error {
	t.Helper()
	spec, err := d.ConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	return d.SetConfig(&base.Config{PluginConfig: parse(t, spec, body), AgentConfig: &base.AgentConfig{Driver: &base.ClientDriverConfig{}}})
}

func healthyDockerFingerprint() *drivers.Fingerprint {
	return &drivers.Fingerprint{Health: drivers.HealthStateHealthy, HealthDescription: "Healthy",
		Attributes: map[string]*pstructs.Attribute{"driver.docker": pstructs.NewBoolAttribute(true)}}
}

func TestInlineSecretsWarnedAndReportedByNameOnly(t *testing.T) {
	logs := &lockedBuffer{}
	d := New(context.Background(), hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace}))
	body := fmt.Sprintf(`
ucloud {
  region      = "cn-bj2"
  public_key  = "pub"
  private_key = %q
  uhost_id    = "uhost-a"
  private_ip  = "10.9.0.11"
  base_url    = "http://127.0.0.1:1"
}
consul {
  address = "127.0.0.1:1"
  token   = %q
}`, testPrivateKey, testToken)
	if err := setConfig(t, d, body); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "log", logs.String())

	var warns []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "[WARN]") && strings.Contains(line, "inline") {
			warns = append(warns, line)
		}
	}
	if len(warns) != 1 {
		t.Fatalf("want exactly one warning about inline secrets, got %d:\n%s", len(warns), logs)
	}
	for _, w := range []string{`fields="ucloud.private_key,consul.token"`, "ucloud.private_key_file", "UCLOUD_PRIVATE_KEY", "consul.token_file", "CONSUL_HTTP_TOKEN", "/v1/agent/self"} {
		if !strings.Contains(warns[0], w) {
			t.Fatalf("warning does not mention %q: %s", w, warns[0])
		}
	}

	fp := d.withAttributes(healthyDockerFingerprint())
	attr, ok := fp.Attributes[inlineSecretsAttr]
	if !ok {
		t.Fatalf("no %s attribute: %v", inlineSecretsAttr, fp.Attributes)
	}
	if s, _ := attr.GetString(); s != "ucloud.private_key,consul.token" {
		t.Fatalf("%s = %q", inlineSecretsAttr, s)
	}
	assertNoSecret(t, "health description", fp.HealthDescription)
	for k, v := range fp.Attributes {
		assertNoSecret(t, "attribute "+k, v.GoString())
	}
	// The secrets are in use: the strings searched for above are real.
	if d.config.UCloud.PrivateKey != testPrivateKey || d.config.Consul.Token != testToken {
		t.Fatalf("inline secrets not taken")
	}
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{testPrivateKey, testToken} {
		if strings.Contains(s, secret) {
			t.Fatalf("%s leaks a secret: %s", what, s)
		}
	}
}

func TestSecretsFromFilesAreNotReported(t *testing.T) {
	logs := &lockedBuffer{}
	d := New(context.Background(), hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace}))
	body := fmt.Sprintf(`
ucloud {
  region           = "cn-bj2"
  public_key       = "pub"
  private_key_file = %q
  uhost_id         = "uhost-a"
  private_ip       = "10.9.0.11"
  base_url         = "http://127.0.0.1:1"
}
consul {
  address    = "127.0.0.1:1"
  token_file = %q
}`, writeFile(t, "key", testPrivateKey+"\n"), writeFile(t, "token", testToken+"\n"))
	if err := setConfig(t, d, body); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "inline") {
		t.Fatalf("file-based secrets reported as inline:\n%s", logs)
	}
	fp := d.withAttributes(healthyDockerFingerprint())
	if _, ok := fp.Attributes[inlineSecretsAttr]; ok {
		t.Fatalf("%s set without inline secrets", inlineSecretsAttr)
	}
	if d.config.UCloud.PrivateKey != testPrivateKey || d.config.Consul.Token != testToken {
		t.Fatalf("secrets not read from their files")
	}
	assertNoSecret(t, "log", logs.String())
}

func TestSetConfigRefusesBadSecretFiles(t *testing.T) {
	keyFile := writeFile(t, "key", testPrivateKey)
	for name, body := range map[string]string{
		"both": fmt.Sprintf(`ucloud {
  private_key      = %q
  private_key_file = %q
}`, testPrivateKey, keyFile),
		"missing": `consul {
  token_file = "/nonexistent/token"
}`,
	} {
		t.Run(name, func(t *testing.T) {
			d := New(context.Background(), hclog.NewNullLogger())
			err := setConfig(t, d, body)
			if err == nil || !(strings.Contains(err.Error(), "ucloud.private_key_file") || strings.Contains(err.Error(), "consul.token_file")) {
				t.Fatalf("want an error naming the file field, got %v", err)
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
}

// The loader's validation instances stay quiet: the instance that runs
// tasks warns. Over gRPC a validation call arrives with an empty, non-nil
// AgentConfig (plugins/base server), in process with none.
func TestInlineSecretsNotWarnedTwice(t *testing.T) {
	for name, agent := range map[string]*base.AgentConfig{"in process": nil, "over grpc": {}} {
		t.Run(name, func(t *testing.T) {
			logs := &lockedBuffer{}
			d := New(context.Background(), hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace}))
			spec, _ := d.ConfigSchema()
			raw := parse(t, spec, fmt.Sprintf(`consul {
  token = %q
}`, testToken))
			if err := d.SetConfig(&base.Config{PluginConfig: raw, AgentConfig: agent}); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(logs.String(), "inline") {
				t.Fatalf("validation instance warned:\n%s", logs)
			}
		})
	}
}
