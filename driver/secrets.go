package driver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	hclog "github.com/hashicorp/go-hclog"
)

// Where a secret of the plugin config comes from, first match wins:
//
//  1. the plugin config: the inline field (private_key, token) or the file
//     field (private_key_file, token_file), never both;
//  2. the environment of the Nomad client (UCLOUD_PRIVATE_KEY,
//     CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE).
//
// Explicit config wins over the environment because it is what the operator
// wrote for this plugin, while the environment is shared by the whole agent
// process. Inline and file together are refused rather than ranked: one of
// them is a leftover, and guessing which would run the plugin with a key the
// operator did not mean. Inline secrets work but are reported, because Nomad
// serves the plugin config block unredacted at /v1/agent/self.

// maxSecretFileSize bounds what a secret file may hold: keys and tokens are
// short, anything larger is the wrong file.
const maxSecretFileSize = 64 << 10

// secretField is one secret of the plugin config and its file variant.
type secretField struct {
	name     string  // e.g. "ucloud.private_key"
	value    *string // the inline value; receives the file's content
	path     *string // the file field; cleared once read
	env      string  // the environment alternative, for messages
	isSecret bool    // reported when inline (a public key is not secret)
}

// secretFields lists the secret-bearing fields of pc (nil blocks have none).
func secretFields(pc *PluginConfig) []secretField {
	var out []secretField
	if u := pc.UCloud; u != nil {
		out = append(out,
			secretField{name: "ucloud.private_key", value: &u.PrivateKey, path: &u.PrivateKeyFile, env: "UCLOUD_PRIVATE_KEY", isSecret: true},
			secretField{name: "ucloud.public_key", value: &u.PublicKey, path: &u.PublicKeyFile, env: "UCLOUD_PUBLIC_KEY"},
		)
	}
	if c := pc.Consul; c != nil {
		out = append(out, secretField{name: "consul.token", value: &c.Token, path: &c.TokenFile, env: "CONSUL_HTTP_TOKEN", isSecret: true})
	}
	return out
}

// resolveSecrets returns a copy of pc whose file fields are replaced by the
// files' contents (surrounding whitespace, such as the trailing newline,
// removed), and the names of the secrets that sit inline in the config.
// Errors name the fields and the fix, never a secret's content.
func resolveSecrets(pc *PluginConfig) (*PluginConfig, []string, error) {
	out := *pc
	if pc.UCloud != nil {
		u := *pc.UCloud
		out.UCloud = &u
	}
	if pc.Consul != nil {
		c := *pc.Consul
		out.Consul = &c
	}
	var inline []string
	var errs []error
	for _, f := range secretFields(&out) {
		switch {
		case *f.value != "" && *f.path != "":
			errs = append(errs, fmt.Errorf("%[1]s and %[1]s_file are both set: keep only %[1]s_file (or unset both and set %[2]s in the Nomad client's environment)", f.name, f.env))
		case *f.path != "":
			v, err := readSecretFile(f.name+"_file", *f.path)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			*f.value, *f.path = v, ""
		case *f.value != "" && f.isSecret:
			inline = append(inline, f.name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return &out, inline, nil
}

// readSecretFile reads one key or token file. The content never appears in
// an error.
func readSecretFile(field, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read the file: %w; make it readable by the Nomad client's user, or unset %s", field, err, field)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("%s: cannot read the file: %w", field, err)
	}
	if len(data) > maxSecretFileSize {
		return "", fmt.Errorf("%s: %s is larger than %d KiB: it should hold only the key or token, on one line", field, path, maxSecretFileSize>>10)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("%s: %s is empty: write the key or token into it, on one line", field, path)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("%s: %s holds more than one line: it should hold only the key or token", field, path)
	}
	return v, nil
}

// inlineSecretsAttr is the fingerprint attribute naming the secrets that sit
// inline in the plugin config (names only, never values).
const inlineSecretsAttr = "driver.rocketmq.config.inline_secrets"

// warnInlineSecrets logs, once per SetConfig, which secrets sit inline in the
// plugin config and how to move them.
func warnInlineSecrets(logger hclog.Logger, inline []string) {
	if len(inline) == 0 {
		return
	}
	fix := make([]string, 0, len(inline))
	for _, name := range inline {
		env := "the environment"
		switch name {
		case "ucloud.private_key":
			env = "UCLOUD_PRIVATE_KEY"
		case "consul.token":
			env = "CONSUL_HTTP_TOKEN"
		}
		fix = append(fix, fmt.Sprintf("replace %s with %s_file or %s in the Nomad client's environment", name, name, env))
	}
	logger.Warn("secrets are set inline in the plugin config; Nomad shows the plugin config unredacted at /v1/agent/self",
		"fields", strings.Join(inline, ","), "fix", strings.Join(fix, "; "))
}

// String redacts the keys, should the block ever be formatted.
func (c UCloudConfig) String() string {
	return fmt.Sprintf("ucloud{region=%q project_id=%q public_key=%s private_key=%s base_url=%q uhost_id=%q}",
		c.Region, c.ProjectID, setOrNot(c.PublicKey), setOrNot(c.PrivateKey), c.BaseURL, c.UHostID)
}

// GoString is String, for %#v.
func (c UCloudConfig) GoString() string { return c.String() }

// String redacts the token, should the block ever be formatted.
func (c ConsulConfig) String() string {
	return fmt.Sprintf("consul{address=%q token=%s token_file=%q kv_prefix=%q}", c.Address, setOrNot(c.Token), c.TokenFile, c.KVPrefix)
}

// GoString is String, for %#v.
func (c ConsulConfig) GoString() string { return c.String() }

func setOrNot(s string) string {
	if s == "" {
		return "unset"
	}
	return "set"
}
