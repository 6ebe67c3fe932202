package testutil

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"testing"
)

// GoResolverSnapshot returns the file where rocketmq-client-go's
// HttpResolver (primitive.NewHttpResolver) keeps its copy of the last list
// it fetched from url, and makes sure the test leaves no such file behind:
// the file is removed now and on t.Cleanup, and so are the directories it
// lives in when this call found them missing and they are empty by then.
//
// The file cannot be moved out of the user's home directory: the resolver
// (primitive/nsresolver.go, getSnapshotFilePath) takes the home from
// os/user.Current(), which reads the password database and ignores $HOME,
// and offers no option or environment variable for the path; so
// t.Setenv("HOME", ...) does not isolate it. The path is
// <home>/logs/rocketmq-go/snapshot/nameserver_addr-<md5 of url>.
func GoResolverSnapshot(t testing.TB, url string) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatalf("the rocketmq-client-go resolver snapshot: current user: %v", err)
	}
	dirs := []string{
		filepath.Join(u.HomeDir, "logs", "rocketmq-go", "snapshot"),
		filepath.Join(u.HomeDir, "logs", "rocketmq-go"),
		filepath.Join(u.HomeDir, "logs"),
	}
	var created []string // deepest first
	for _, d := range dirs {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			created = append(created, d)
		}
	}
	sum := md5.Sum([]byte(url))
	path := filepath.Join(dirs[0], "nameserver_addr-"+hex.EncodeToString(sum[:]))
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("remove the rocketmq-client-go resolver snapshot: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove the rocketmq-client-go resolver snapshot: %v", err)
		}
		for _, d := range created {
			_ = os.Remove(d) // fails, and keeps it, when not empty
		}
	})
	return path
}
