package pgtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/synchrosync/synchro/internal/pglocal"
)

// The container backend. testcontainers-go and the Docker client are not
// dependencies of this module (they would be of every application that
// imports synchro): the container is run by the program internal/pgcontainer,
// a module of its own, which this file runs with `go run` once a Docker
// engine answers. The program prints the server's URL and removes the
// container when its standard input closes; this file holds the other end
// of that pipe, so the container goes when the test binary ends, even
// killed. The check for an engine uses the standard library only.

// defaultImage is the container image used unless envImage names another.
const defaultImage = "postgres:15"

// containerProgram is the directory of the program that runs the container,
// relative to the repository root.
const containerProgram = "internal/pgcontainer"

// pingTimeout bounds the check of one Docker address.
const pingTimeout = 2 * time.Second

// dockerEndpoint is an address of a Docker engine, as DOCKER_HOST spells
// it, and how it was found.
type dockerEndpoint struct {
	host   string // unix:///PATH or tcp://HOST:PORT
	source string // for messages: "DOCKER_HOST", "default socket" ...
	// tls is the client configuration of a tcp address with TLS; nil
	// means plain HTTP.
	tls *tls.Config
}

// findDocker returns the first Docker engine that answers a ping, looking
// where testcontainers-go looks, in its order: tc.host of
// ~/.testcontainers.properties, DOCKER_HOST, /var/run/docker.sock,
// docker.host of the properties file, then the sockets of rootless Docker
// and Docker Desktop ($XDG_RUNTIME_DIR/docker.sock,
// ~/.docker/run/docker.sock, ~/.docker/desktop/docker.sock,
// /run/user/UID/docker.sock). Unix sockets that do not exist are skipped.
// It returns an error wrapping errUnavailable when none answers.
func findDocker(ctx context.Context) (dockerEndpoint, error) {
	candidates, err := dockerCandidates()
	if err != nil {
		return dockerEndpoint{}, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	if len(candidates) == 0 {
		return dockerEndpoint{}, fmt.Errorf("%w: no Docker engine: DOCKER_HOST is not set and no Docker socket exists", errUnavailable)
	}
	var errs []string
	for _, ep := range candidates {
		err := pingDocker(ctx, ep)
		if err == nil {
			return ep, nil
		}
		errs = append(errs, fmt.Sprintf("%s (%s): %v", ep.host, ep.source, err))
	}
	return dockerEndpoint{}, fmt.Errorf("%w: no Docker engine answers: %s", errUnavailable, strings.Join(errs, "; "))
}

// dockerCandidates lists the addresses findDocker tries, in its order.
func dockerCandidates() ([]dockerEndpoint, error) {
	props := readProperties()
	envTLS, err := tlsFromEnv(props)
	if err != nil {
		return nil, err
	}
	var eps []dockerEndpoint
	add := func(host, source string) error {
		if host == "" {
			return nil
		}
		u, err := url.Parse(host)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", source, host, err)
		}
		switch u.Scheme {
		case "unix":
			if _, err := os.Stat(u.Path); err != nil {
				return nil
			}
			eps = append(eps, dockerEndpoint{host: host, source: source})
		case "tcp":
			eps = append(eps, dockerEndpoint{host: host, source: source, tls: envTLS})
		default:
			// ssh:// and npipe:// need more than the standard library.
			return fmt.Errorf("%s=%q: the tests support only unix:// and tcp:// Docker addresses", source, host)
		}
		return nil
	}
	if err := add(props["tc.host"], "tc.host in ~/.testcontainers.properties"); err != nil {
		return nil, err
	}
	if err := add(os.Getenv("DOCKER_HOST"), "DOCKER_HOST"); err != nil {
		return nil, err
	}
	if err := add("unix:///var/run/docker.sock", "default socket"); err != nil {
		return nil, err
	}
	if err := add(props["docker.host"], "docker.host in ~/.testcontainers.properties"); err != nil {
		return nil, err
	}
	var sockets []string
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		sockets = append(sockets, filepath.Join(dir, "docker.sock"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		sockets = append(sockets,
			filepath.Join(home, ".docker", "run", "docker.sock"),
			filepath.Join(home, ".docker", "desktop", "docker.sock"))
	}
	sockets = append(sockets, filepath.Join("/run/user", strconv.Itoa(os.Getuid()), "docker.sock"))
	for _, s := range sockets {
		if err := add("unix://"+s, "rootless or Desktop socket"); err != nil {
			return nil, err
		}
	}
	// The same socket may be found twice (a Desktop symlink, the properties
	// naming the default): keep the first.
	seen := make(map[string]bool)
	out := eps[:0]
	for _, ep := range eps {
		if !seen[ep.host] {
			seen[ep.host] = true
			out = append(out, ep)
		}
	}
	return out, nil
}

// readProperties reads ~/.testcontainers.properties (key=value lines), if
// any.
func readProperties() map[string]string {
	props := make(map[string]string)
	home, err := os.UserHomeDir()
	if err != nil {
		return props
	}
	data, err := os.ReadFile(filepath.Join(home, ".testcontainers.properties"))
	if err != nil {
		return props
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			props[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return props
}

// tlsFromEnv returns the TLS configuration of tcp addresses that Docker's
// client takes from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (or
// docker.tls.verify and docker.cert.path of the properties file): nil
// without TLS.
func tlsFromEnv(props map[string]string) (*tls.Config, error) {
	verify := os.Getenv("DOCKER_TLS_VERIFY")
	if verify == "" {
		verify = props["docker.tls.verify"]
	}
	if verify == "" || verify == "0" {
		return nil, nil
	}
	dir := os.Getenv("DOCKER_CERT_PATH")
	if dir == "" {
		dir = props["docker.cert.path"]
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("DOCKER_TLS_VERIFY is set but DOCKER_CERT_PATH is not: %w", err)
		}
		dir = filepath.Join(home, ".docker")
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("DOCKER_TLS_VERIFY: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("DOCKER_TLS_VERIFY: no certificate in %s", filepath.Join(dir, "ca.pem"))
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err == nil {
		cfg.Certificates = []tls.Certificate{cert}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("DOCKER_TLS_VERIFY: %w", err)
	}
	return cfg, nil
}

// pingDocker asks the engine at ep for GET /_ping, within pingTimeout.
func pingDocker(ctx context.Context, ep dockerEndpoint) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	u, err := url.Parse(ep.host)
	if err != nil {
		return err
	}
	transport := &http.Transport{TLSClientConfig: ep.tls, DisableKeepAlives: true}
	target := "http://" + u.Host + "/_ping"
	if ep.tls != nil {
		target = "https://" + u.Host + "/_ping"
	}
	if u.Scheme == "unix" {
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", u.Path)
		}
		target = "http://docker/_ping"
	}
	defer transport.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping: %s %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// programDir returns the directory of internal/pgcontainer: next to this
// package's source, else found by walking up from the working directory
// (a test binary runs in its package's directory) to the repository root.
func programDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Join(filepath.Dir(file), "..", "pgcontainer")
		if isDir(dir) {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding %s: %w", containerProgram, err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/synchrosync/synchro\n")) {
			return filepath.Join(dir, filepath.FromSlash(containerProgram)), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%s not found: no repository root above %s", containerProgram, wd)
		}
	}
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// startDocker runs PostgreSQL in a container on the engine at ep, through
// internal/pgcontainer.
func startDocker(ctx context.Context, ep dockerEndpoint) (*server, error) {
	image := os.Getenv(envImage)
	if image == "" {
		image = defaultImage
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	dir, err := programDir()
	if err != nil {
		return nil, err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("running %s: %w", containerProgram, err)
	}
	p := &containerProc{image: image}
	p.cmd = exec.Command(goBin, "run", ".", "-image", image)
	p.cmd.Dir = dir
	// The engine that answered, for testcontainers-go to use.
	p.cmd.Env = append(os.Environ(), "DOCKER_HOST="+ep.host)
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("running %s: %w", containerProgram, err)
	}
	// A pipe of our own rather than StdoutPipe, whose reads must end
	// before Wait: this one is read to its end whatever the program does.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("running %s: %w", containerProgram, err)
	}
	p.cmd.Stdout = stdoutW
	err = p.cmd.Start()
	_ = stdoutW.Close()
	if err != nil {
		_ = stdout.Close()
		return nil, fmt.Errorf("running %s: %w", containerProgram, err)
	}
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()

	// The program prints the URL once the server is ready, or exits.
	line := make(chan string, 1)
	go func() {
		defer func() { _ = stdout.Close() }()
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var raw string
	select {
	case raw = <-line:
	case <-ctx.Done():
		return nil, errors.Join(fmt.Errorf("container %s: %w", image, ctx.Err()), p.stopWithin(ctx))
	}
	if raw == "" {
		return nil, p.failed(ctx)
	}
	base, err := url.Parse(raw)
	if err != nil || base.Scheme != "postgres" {
		// The parse error would echo the URL, password included.
		return nil, errors.Join(fmt.Errorf("%s printed no postgres:// URL", containerProgram), p.stopWithin(ctx))
	}
	conn, err := pglocal.WaitReady(ctx, base.String(), p.exited)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("container %s: %w", image, err), p.stopWithin(ctx))
	}
	_ = conn.Close(ctx)
	return newServer(ctx, *base, p.stop, fmt.Sprintf("PostgreSQL in container %s (%s, Docker engine at %s)", image, base.Host, ep.host))
}

// containerProc is a running internal/pgcontainer.
type containerProc struct {
	image   string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  lockedBuffer
	exited  chan struct{} // closed when cmd has exited; then waitErr is set
	waitErr error
}

// stop closes the program's standard input, which makes it remove the
// container, and waits for it to exit; when ctx ends first, it kills the
// program.
func (p *containerProc) stop(ctx context.Context) error {
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not remove container %s in time: %w", containerProgram, p.image, ctx.Err())
	}
	if p.waitErr != nil {
		if own := p.ownErrors(); own != "" {
			return fmt.Errorf("%s: %s", containerProgram, own)
		}
		return fmt.Errorf("%s: %w%s", containerProgram, p.waitErr, p.stderrTail())
	}
	return nil
}

// stopWithin is stop within a minute, whether ctx (the start's) is done or
// not.
func (p *containerProc) stopWithin(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return p.stop(ctx)
}

// failed is the error of a program that exited (or is exiting) without
// printing a URL: what it said.
func (p *containerProc) failed(ctx context.Context) error {
	err := p.stopWithin(ctx)
	if err == nil {
		err = fmt.Errorf("%s exited without printing a URL%s", containerProgram, p.stderrTail())
	}
	return err
}

// ownErrors returns the program's own error lines ("pgcontainer: ..."),
// joined, or "" when it wrote none.
func (p *containerProc) ownErrors() string {
	var own []string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if msg, ok := strings.CutPrefix(strings.TrimSpace(l), "pgcontainer: "); ok {
			own = append(own, msg)
		}
	}
	return strings.Join(own, "; ")
}

// stderrTail returns what the program wrote on standard error as lines to
// append to an error: its own error lines when there are any, else the last
// ten lines (a build error of go run, a panic).
func (p *containerProc) stderrTail() string {
	if own := p.ownErrors(); own != "" {
		return ": " + own
	}
	text := strings.TrimSpace(p.stderr.String())
	if text == "" {
		return ""
	}
	lines := strings.Split(text, "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return ":\n    " + strings.Join(lines, "\n    ")
}

// lockedBuffer is a bytes.Buffer safe for the writes of exec's copying
// goroutine and concurrent reads.
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
