package pgtest

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeEngine serves the Docker API's /_ping on a unix socket in a
// temporary directory with status and returns its DOCKER_HOST address.
func fakeEngine(t *testing.T, status int) string {
	t.Helper()
	// A short path: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "pgtest-docker")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_ping" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte("OK"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + path
}

// isolateDocker points the places findDocker reads at an empty home
// directory and clears DOCKER_HOST and the TLS variables.
func isolateDocker(t *testing.T) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", "")
	for _, k := range []string{"DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"} {
		t.Setenv(k, "")
	}
}

func TestFindDockerAnswers(t *testing.T) {
	isolateDocker(t)
	host := fakeEngine(t, http.StatusOK)
	t.Setenv("DOCKER_HOST", host)
	ep, err := findDocker(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ep.host != host || ep.source != "DOCKER_HOST" {
		t.Errorf("found %+v, want %s from DOCKER_HOST", ep, host)
	}
}

func TestFindDockerProperties(t *testing.T) {
	isolateDocker(t)
	host := fakeEngine(t, http.StatusOK)
	props := "# testcontainers\ndocker.host = " + host + "\n"
	if err := os.WriteFile(filepath.Join(os.Getenv("HOME"), ".testcontainers.properties"), []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		t.Skip("a Docker socket at /var/run/docker.sock comes first")
	}
	ep, err := findDocker(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ep.host != host || !strings.Contains(ep.source, "docker.host") {
		t.Errorf("found %+v, want %s from docker.host", ep, host)
	}
}

func TestFindDockerUnavailable(t *testing.T) {
	isolateDocker(t)
	for name, host := range map[string]string{
		"refuses":         fakeEngine(t, http.StatusInternalServerError),
		"no socket":       "unix://" + filepath.Join(t.TempDir(), "none.sock"),
		"nothing listens": "tcp://127.0.0.1:1",
	} {
		if _, err := os.Stat("/var/run/docker.sock"); err == nil && name == "no socket" {
			continue // the default socket is tried next
		}
		t.Setenv("DOCKER_HOST", host)
		_, err := findDocker(t.Context())
		if !errors.Is(err, errUnavailable) {
			t.Errorf("%s (%s): %v, want errUnavailable", name, host, err)
		}
	}
}

func TestFindDockerUnsupportedAddress(t *testing.T) {
	isolateDocker(t)
	t.Setenv("DOCKER_HOST", "ssh://user@host")
	_, err := findDocker(t.Context())
	if err == nil || !strings.Contains(err.Error(), "only unix:// and tcp://") {
		t.Errorf("DOCKER_HOST=ssh://...: %v, want an error naming the supported addresses", err)
	}
}

func TestProgramDir(t *testing.T) {
	dir, err := programDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "main.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", containerProgram, err)
		}
	}
}

func TestStderrTail(t *testing.T) {
	for _, c := range []struct{ stderr, want string }{
		{"", ""},
		{"2026/01/01 🐳 Creating container\npgcontainer: starting container x: no such image\n", ": starting container x: no such image"},
		{"# command-line-arguments\n./main.go:1: syntax error\n", ":\n    # command-line-arguments\n    ./main.go:1: syntax error"},
	} {
		p := &containerProc{}
		_, _ = p.stderr.Write([]byte(c.stderr))
		if got := p.stderrTail(); got != c.want {
			t.Errorf("stderr %q: tail %q, want %q", c.stderr, got, c.want)
		}
	}
}
