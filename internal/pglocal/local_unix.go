//go:build unix

package pglocal

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// ownerPIDFile holds the pid of the process that owns the directory,
	// so that later starts can remove the directories of dead ones.
	ownerPIDFile = "owner.pid"
	// staleUnownedAge is how old a directory without ownerPIDFile must be
	// before it is considered abandoned rather than being set up.
	staleUnownedAge = time.Hour
	// portAttempts bounds the retries when the free port was taken before
	// the server bound it.
	portAttempts = 3
	// stopTimeout bounds the fast shutdown before the server is killed.
	stopTimeout = 15 * time.Second
	// finishTimeout bounds the wait for initdb to finish when the start is
	// cancelled.
	finishTimeout = 20 * time.Second
	// killTimeout bounds the wait for a killed process to be reaped.
	killTimeout = 10 * time.Second
	// logTailBytes is how much of the server log an error quotes.
	logTailBytes = 4 << 10
)

// serverSettings are the postgres options of a local server, tuned for
// tests and demos: logical decoding, many slots and connections, no
// durability. Dynamic shared memory lives in files of the data directory
// rather than in /dev/shm, so that a server killed with its owner leaves
// nothing outside the directory the next start removes.
var serverSettings = []string{
	"dynamic_shared_memory_type=mmap",
	"listen_addresses=127.0.0.1",
	"wal_level=logical",
	"max_replication_slots=64",
	"max_wal_senders=64",
	"max_connections=300",
	"fsync=off",
	"synchronous_commit=off",
	"full_page_writes=off",
}

// errPortInUse reports that the server could not use the port it was given.
var errPortInUse = errors.New("port already in use")

// binaries are the PostgreSQL programs of one installation.
type binaries struct {
	dir      string // the directory of the real (symlink-resolved) initdb
	initdb   string
	postgres string
}

// Server is a PostgreSQL server run from the local binaries, as a child
// process of the calling program. Its methods must not be called
// concurrently.
type Server struct {
	l    *localServer
	port int
}

// Start initialises a cluster in a new temporary directory and starts it on
// a free port, retrying with another port when the one it chose was taken
// meanwhile. It returns once the server accepts connections. On failure it
// removes what it created; the error wraps ErrUnavailable when there are no
// local binaries.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	removeStaleDirs(cfg)
	l, port, err := launchLocal(ctx, bin, cred, cfg)
	if err != nil {
		return nil, err
	}
	return &Server{l: l, port: port}, nil
}

// URL returns the superuser URL of the server's maintenance database:
// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
func (s *Server) URL() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on, on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Dir returns the server's temporary directory, which holds the data
// directory, the socket directory and the server log (postgres.log).
func (s *Server) Dir() string { return s.l.dir }

// BinDir returns the directory of the PostgreSQL binaries the server runs.
func (s *Server) BinDir() string { return s.l.bin.dir }

// Stop shuts the server down with a fast shutdown (open transactions roll
// back, sessions are disconnected), kills it if it has not exited after 15
// seconds or when ctx ends first, and removes its directory. Calling it
// again does nothing more.
func (s *Server) Stop(ctx context.Context) error {
	return s.l.stop(ctx)
}

// Restart stops the server with a fast shutdown, as Stop does but keeping
// its directory, and starts it again on the same port and data directory.
// It returns once the server accepts connections; connections opened
// before are broken.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.l.shutdown(ctx); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	if err := s.l.start(ctx, s.port); err != nil {
		return fmt.Errorf("starting again on port %d: %w", s.port, err)
	}
	return nil
}

// localServer is the cluster of a Server and its running postmaster.
type localServer struct {
	bin     binaries
	dir     string // temporary directory holding everything below
	dataDir string
	sockDir string
	logPath string
	cred    *syscall.Credential // nil: run as the current user
	proc    *process            // the running postmaster
}

// launchLocal initialises a cluster in a new temporary directory and starts
// it on a free port. On failure it removes the directory.
func launchLocal(ctx context.Context, bin binaries, cred *syscall.Credential, cfg Config) (*localServer, int, error) {
	l, err := newLocalServer(bin, cred, cfg)
	if err != nil {
		return nil, 0, err
	}
	if err := l.initCluster(ctx); err != nil {
		return nil, 0, errors.Join(err, l.removeDir())
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err == nil {
			err = l.start(ctx, port)
		}
		if err == nil {
			return l, port, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return nil, 0, errors.Join(fmt.Errorf("starting %s: %w", bin.postgres, err), l.removeDir())
		}
	}
}

// newLocalServer creates the directory of a local server, as cfg (with its
// defaults) says.
func newLocalServer(bin binaries, cred *syscall.Credential, cfg Config) (*localServer, error) {
	dir, err := os.MkdirTemp(cfg.Dir, dirPattern(cfg))
	if err != nil {
		return nil, fmt.Errorf("creating the server directory: %w", err)
	}
	return &localServer{
		bin:     bin,
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
		logPath: filepath.Join(dir, "postgres.log"),
		cred:    cred,
	}, nil
}

// initCluster records the owner of the directory and runs initdb.
func (l *localServer) initCluster(ctx context.Context) error {
	if err := writeOwnerPID(l.dir); err != nil {
		return err
	}
	if err := os.Mkdir(l.sockDir, 0o700); err != nil {
		return fmt.Errorf("creating the socket directory: %w", err)
	}
	if l.cred != nil {
		for _, p := range []string{l.dir, l.sockDir} {
			if err := os.Chown(p, int(l.cred.Uid), int(l.cred.Gid)); err != nil {
				return fmt.Errorf("handing %s to the postgres user: %w", p, err)
			}
		}
	}

	var out bytes.Buffer
	cmd := exec.Command(l.bin.initdb,
		"-D", l.dataDir,
		"-A", "trust",
		"-U", "postgres",
		"--no-sync",
		"-E", "UTF8",
		"--locale=C",
	)
	l.configure(cmd)
	cmd.Stdout = &out
	cmd.Stderr = &out
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("starting initdb: %w", err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		if err := finishGroup(p); err != nil {
			return fmt.Errorf("initdb: %w", errors.Join(ctx.Err(), err))
		}
		return fmt.Errorf("initdb: %w", ctx.Err())
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w\n%s", l.bin.initdb, p.err, tail(out.Bytes()))
	}
	return nil
}

// start runs postgres on port and waits until it accepts connections. It
// returns an error wrapping errPortInUse when another process holds the
// port.
func (l *localServer) start(ctx context.Context, port int) error {
	logFile, err := os.OpenFile(l.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the server log: %w", err)
	}
	offset, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return errors.Join(fmt.Errorf("opening the server log: %w", err), logFile.Close())
	}
	args := []string{"-D", l.dataDir, "-p", strconv.Itoa(port), "-k", l.sockDir}
	for _, s := range serverSettings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(l.bin.postgres, args...)
	l.configure(cmd)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	p, err := startProcess(cmd)
	// The child has its own descriptor of the log.
	closeErr := logFile.Close()
	if err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	l.proc = p
	if closeErr != nil {
		return errors.Join(fmt.Errorf("closing the server log: %w", closeErr), l.kill())
	}

	connString := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	conn, err := WaitReady(ctx, connString, p.done)
	if err == nil {
		// The port was free a moment ago; make sure the server that
		// answers is this one.
		var dir string
		dir, err = dataDirectory(ctx, conn)
		_ = conn.Close(ctx)
		if err == nil {
			if sameDir(dir, l.dataDir) {
				return nil
			}
			err = fmt.Errorf("%w: the server on port %d serves %s", errPortInUse, port, dir)
		}
	}
	killErr := l.kill()
	if ctx.Err() != nil {
		// Cancelled: the server log says nothing of interest.
		return errors.Join(err, killErr)
	}
	serverLog := l.logSince(offset)
	if bytes.Contains(serverLog, []byte("could not bind")) || bytes.Contains(serverLog, []byte("already in use")) {
		err = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return errors.Join(fmt.Errorf("%w\nserver log:\n%s", err, tail(serverLog)), killErr)
}

// configure sets what initdb and postgres share: working directory,
// environment, user and lifetime.
func (l *localServer) configure(cmd *exec.Cmd) {
	cmd.Dir = l.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a terminal's ^C reaches the owner only,
		// which then shuts the server down in order; and the whole group
		// can be killed at once.
		Setpgid:    true,
		Credential: l.cred,
	}
	setPdeathsig(cmd.SysProcAttr)
}

// stop shuts the server down and removes its directory.
func (l *localServer) stop(ctx context.Context) error {
	var errs []error
	if l.proc != nil {
		if err := l.shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.removeDir(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// shutdown asks for a fast shutdown (SIGINT: roll back, disconnect, exit),
// and kills the server if it has not exited after stopTimeout.
func (l *localServer) shutdown(ctx context.Context) error {
	if err := l.proc.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return errors.Join(fmt.Errorf("signalling postgres: %w", err), l.kill())
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-l.proc.done:
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	return l.kill()
}

// kill kills the server's process group and waits for the postmaster.
func (l *localServer) kill() error {
	return killGroup(l.proc)
}

// removeDir removes the server's directory.
func (l *localServer) removeDir() error {
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("removing %s: %w", l.dir, err)
	}
	return nil
}

// logSince reads the server log from offset.
func (l *localServer) logSince(offset int64) []byte {
	f, err := os.Open(l.logPath)
	if err != nil {
		return []byte(fmt.Sprintf("(reading the server log: %v)", err))
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<30))
	if err != nil {
		return []byte(fmt.Sprintf("(reading the server log: %v)", err))
	}
	return b
}

// process is a child process waited for by its own goroutine.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the result of cmd.Wait, set before done is closed
}

// startProcess starts cmd and waits for it in the background. Linux sends
// the parent-death signal when the thread that started the child exits,
// not the process: the goroutine is locked to its thread until the child
// has exited, so the signal fires only when the owner process dies.
func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// finishGroup lets the process led by p finish, for at most
// finishTimeout, then kills its group. Interrupting initdb (SIGTERM or
// SIGKILL) leaves the POSIX shared memory segments of its bootstrap
// backends in /dev/shm (initdb runs them with the default shared memory
// type, before the server's settings apply); initdb takes about a second.
func finishGroup(p *process) error {
	timer := time.NewTimer(finishTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		return killGroup(p)
	}
}

// killGroup kills the process group led by p and waits for p to exit.
func killGroup(p *process) error {
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s: %w", p.cmd.Path, err)
	}
	timer := time.NewTimer(killTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		return fmt.Errorf("%s (pid %d) has not exited %v after SIGKILL", p.cmd.Path, p.cmd.Process.Pid, killTimeout)
	}
}

// findBinaries finds initdb on PATH, else the newest version under
// /usr/lib/postgresql, and the postgres binary beside the real initdb (PATH
// often holds a symlink to a wrapper directory without postgres).
func findBinaries() (binaries, error) {
	var candidates []string
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, p)
	}
	installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(installed, func(a, b string) int {
		// Newest first.
		return compareVersions(filepath.Base(filepath.Dir(filepath.Dir(b))), filepath.Base(filepath.Dir(filepath.Dir(a))))
	})
	candidates = append(candidates, installed...)

	for _, c := range candidates {
		initdb, err := filepath.EvalSymlinks(c)
		if err != nil {
			continue
		}
		dir := filepath.Dir(initdb)
		postgres := filepath.Join(dir, "postgres")
		if fi, err := os.Stat(postgres); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return binaries{dir: dir, initdb: initdb, postgres: postgres}, nil
		}
	}
	return binaries{}, fmt.Errorf("%w: no initdb with a postgres beside it on PATH or under /usr/lib/postgresql/*/bin", ErrUnavailable)
}

// compareVersions compares dotted version numbers such as "9.6" and "15".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// serverCredential returns the user to run PostgreSQL as: the postgres OS
// user when running as root (PostgreSQL refuses to run as root), else nil
// for the current user.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to run as root: no OS user postgres to run it as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of user postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// accessWriteOK is W_OK of access(2).
const accessWriteOK = 2

// defaultDir is /dev/shm when it is a writable directory, else
// os.TempDir().
func defaultDir() string {
	const shm = "/dev/shm"
	if fi, err := os.Stat(shm); err == nil && fi.IsDir() && syscall.Access(shm, accessWriteOK) == nil {
		return shm
	}
	return os.TempDir()
}

// dirPattern is the os.MkdirTemp and filepath.Glob pattern of the
// directories of cfg's servers.
func dirPattern(cfg Config) string {
	return cfg.Name + "-*"
}

// removeStaleDirs removes the directories of cfg's servers left by
// processes that died without stopping their server. Errors are ignored: a
// directory that cannot be removed belongs to someone else or is removed by
// its owner.
func removeStaleDirs(cfg Config) {
	dirs, _ := filepath.Glob(filepath.Join(cfg.Dir, dirPattern(cfg)))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerPIDFile))
		var pid int
		if err == nil {
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if err != nil || pid <= 0 {
			// Being set up right now, or abandoned before the owner
			// wrote its pid (or by a writer older than writeOwnerPID).
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > staleUnownedAge {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		if !processAlive(pid) {
			_ = os.RemoveAll(dir)
		}
	}
}

// writeOwnerPID records the calling process as the owner of dir. The file
// appears whole or not at all (written aside, then renamed), so that a
// concurrent removeStaleDirs never reads a partial pid.
func writeOwnerPID(dir string) error {
	tmp := filepath.Join(dir, ownerPIDFile+".tmp")
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := os.WriteFile(tmp, pid, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", ownerPIDFile, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ownerPIDFile)); err != nil {
		return fmt.Errorf("writing %s: %w", ownerPIDFile, err)
	}
	return nil
}

// processAlive reports whether a process with pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	return port, nil
}

// dataDirectory returns the data directory of the server conn is connected
// to.
func dataDirectory(ctx context.Context, conn *pgconn.PgConn) (string, error) {
	results, err := conn.Exec(ctx, `SELECT current_setting('data_directory')`).ReadAll()
	if err != nil {
		return "", fmt.Errorf("reading data_directory: %w", err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 1 {
		return "", errors.New("reading data_directory: unexpected result")
	}
	return string(results[0].Rows[0][0]), nil
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
}

// tail returns the end of b, at most logTailBytes.
func tail(b []byte) []byte {
	if len(b) <= logTailBytes {
		return b
	}
	return append([]byte("..."), b[len(b)-logTailBytes:]...)
}
