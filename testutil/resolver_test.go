package testutil_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestGoResolverSnapshot: the real rocketmq-client-go resolver writes its
// snapshot where GoResolverSnapshot says, not under $HOME, and the file is
// gone after the test.
func TestGoResolverSnapshot(t *testing.T) {
	rlog.SetLogLevel("error")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "127.0.0.1:9876;127.0.0.2:9876")
	}))
	defer srv.Close()
	url := srv.URL + "/rocketmq/snapshot-test"
	home := t.TempDir()

	var path string
	t.Run("resolve", func(t *testing.T) {
		t.Setenv("HOME", home)
		path = testutil.GoResolverSnapshot(t, url)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("snapshot %s exists before the resolver ran (%v)", path, err)
		}
		got := primitive.NewHttpResolver("snapshot-test", url).Resolve()
		if want := []string{"127.0.0.1:9876", "127.0.0.2:9876"}; !slices.Equal(got, want) {
			t.Fatalf("Resolve() = %q, want %q", got, want)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != "127.0.0.1:9876;127.0.0.2:9876" {
			t.Fatalf("snapshot %s = %q (%v), want the list", path, b, err)
		}
		// Setting HOME moved nothing.
		if _, err := os.Stat(filepath.Join(home, "logs")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the resolver wrote under $HOME=%s (%v); GoResolverSnapshot's note is wrong", home, err)
		}
	})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot %s left after the test (%v)", path, err)
	}
}
