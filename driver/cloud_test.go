package driver

import (
	"strings"
	"testing"
	"time"
)

func TestResolveUCloud(t *testing.T) {
	env := map[string]string{
		"UCLOUD_PUBLIC_KEY": "env-pub", "UCLOUD_PRIVATE_KEY": "env-priv", "UCLOUD_REGION": "cn-sh2",
		"UCLOUD_PROJECT_ID": "org-env", "UCLOUD_API_BASE_URL": "http://env",
	}
	getenv := func(k string) string { return env[k] }
	none := func(string) string { return "" }
	cases := []struct {
		name   string
		block  *UCloudConfig
		getenv func(string) string
		want   *UCloudConfig
	}{
		{"nothing configured", nil, none, nil},
		{"env only", nil, getenv, &UCloudConfig{PublicKey: "env-pub", PrivateKey: "env-priv", Region: "cn-sh2", ProjectID: "org-env", BaseURL: "http://env"}},
		{"block wins over env", &UCloudConfig{Region: "cn-bj2", PublicKey: "blk"}, getenv,
			&UCloudConfig{PublicKey: "blk", PrivateKey: "env-priv", Region: "cn-bj2", ProjectID: "org-env", BaseURL: "http://env"}},
		{"empty block, no env", &UCloudConfig{}, none, &UCloudConfig{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := resolveUCloud(tc.block, tc.getenv)
			if (got == nil) != (tc.want == nil) || (got != nil && got.PublicKey != tc.want.PublicKey) ||
				(got != nil && (got.PrivateKey != tc.want.PrivateKey || got.Region != tc.want.Region || got.ProjectID != tc.want.ProjectID || got.BaseURL != tc.want.BaseURL)) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestValidateUCloudNeverEchoesKeys(t *testing.T) {
	cases := []struct {
		name string
		cfg  UCloudConfig
		want string
	}{
		{"missing keys", UCloudConfig{Region: "cn-bj2"}, "ucloud.public_key"},
		{"missing region", UCloudConfig{PublicKey: "p", PrivateKey: "TOPSECRET"}, "ucloud.region"},
		{"bad timeout", UCloudConfig{PublicKey: "p", PrivateKey: "TOPSECRET", Region: "r", CallTimeout: "soon"}, "ucloud.call_timeout"},
		{"negative attempts", UCloudConfig{PublicKey: "p", PrivateKey: "TOPSECRET", Region: "r", MaxAttempts: -1}, "ucloud.max_attempts"},
		{"valid", UCloudConfig{PublicKey: "p", PrivateKey: "TOPSECRET", Region: "r", BindTimeout: "30s"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validateUCloud(&tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error naming %s, got %v", tc.want, err)
			}
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Fatalf("error leaks the private key: %v", err)
			}
		})
	}
}

func TestNSAddrConfig(t *testing.T) {
	cfg, err := nsaddrConfig(&NSAddrConfig{DefaultCluster: "orders", StaleAfter: "2m", IdleTimeout: "1m", IPv6: true},
		&ConsulConfig{Address: "10.0.0.1:8500", Token: "tok", TokenFile: "/etc/tok"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.StaleAfter != 2*time.Minute || cfg.IdleTimeout != time.Minute || !cfg.IncludeIPv6 ||
		cfg.Consul.Address != "10.0.0.1:8500" || cfg.Consul.TokenFile != "/etc/tok" || cfg.DefaultCluster != "orders" {
		t.Fatalf("nsaddr config = %+v", cfg)
	}
	for _, bad := range []NSAddrConfig{{StaleAfter: "x"}, {IdleTimeout: "-1s"}} {
		if _, err := nsaddrConfig(&bad, nil); err == nil || !strings.Contains(err.Error(), "nsaddr.") {
			t.Fatalf("%+v: want an error naming the nsaddr field, got %v", bad, err)
		}
	}
}
