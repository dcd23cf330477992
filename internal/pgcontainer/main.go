// Command pgcontainer runs PostgreSQL in a container for the tests, through
// testcontainers-go, for as long as its standard input stays open. The test
// harness (internal/pgtest) runs it with `go run` when a Docker engine
// answers; see the harness's package documentation.
//
// It starts the image (-image, default postgres:15) with wal_level=logical
// and the other settings the tests need, waits until the server accepts
// connections, prints one line on standard output, the superuser URL of
// the maintenance database:
//
//	postgres://postgres:PASSWORD@HOST:PORT/postgres?sslmode=disable
//
// then waits. It removes the container when its standard input reaches end
// of file (the harness closes it, or died and the system closed it) or on
// SIGINT, SIGTERM or SIGHUP, and exits. It does not rely on testcontainers'
// reaper (Ryuk), which may be disabled (TESTCONTAINERS_RYUK_DISABLED=true)
// where its image cannot be pulled. Errors go to standard error, one line
// starting with "pgcontainer: ", and the exit status is 1.
//
// It is a module of its own (go.mod here), so that testcontainers-go and
// the Docker client stay out of synchro's go.mod. By hand, for a server
// that several test runs share:
//
//	cd internal/pgcontainer && go run . </dev/tty   # ^D or ^C removes it
//	SYNCHRO_TEST_DATABASE_URL=<the printed URL> go test ./...
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// defaultImage is the image of -image; internal/pgtest passes
// SYNCHRO_TEST_POSTGRES_IMAGE when set.
const defaultImage = "postgres:15"

const (
	// startTimeout bounds starting the container, image pull included.
	startTimeout = 5 * time.Minute
	// stopTimeout bounds removing it.
	stopTimeout = time.Minute
)

func main() {
	image := flag.String("image", defaultImage, "PostgreSQL `image` with the official image's entrypoint contract")
	flag.Parse()
	if err := run(*image); err != nil {
		fmt.Fprintf(os.Stderr, "pgcontainer: %v\n", err)
		os.Exit(1)
	}
}

func run(image string) (err error) {
	// done is cancelled when the container must go: end of standard input
	// or a signal, during the start too.
	done, cancel := context.WithCancel(context.Background())
	defer cancel()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	// When the harness dies, so do the pipes of standard output and error:
	// a write to them (testcontainers logs as it removes the container)
	// must fail, not kill this program before the container is gone.
	signal.Ignore(syscall.SIGPIPE)
	go func() {
		select {
		case <-signals:
			cancel()
		case <-done.Done():
		}
	}()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	ctr, base, startErr := start(done, image)
	if ctr != nil {
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			if stopErr := ctr.Terminate(ctx, testcontainers.StopTimeout(2*time.Second)); stopErr != nil {
				err = errors.Join(err, fmt.Errorf("removing container %s: %w", ctr.GetContainerID(), stopErr))
			}
		}()
	}
	if startErr != nil {
		if done.Err() != nil {
			return fmt.Errorf("stopped (end of standard input or a signal) while starting container %s", image)
		}
		return startErr
	}
	if _, err := fmt.Println(base.String()); err != nil {
		return fmt.Errorf("writing the URL: %w", err)
	}
	<-done.Done()
	return nil
}

// start runs the container and returns it (also on failure, when it was
// created) with the superuser URL of its maintenance database.
func start(done context.Context, image string) (*testcontainers.DockerContainer, url.URL, error) {
	ctx, cancel := context.WithTimeout(done, startTimeout)
	defer cancel()
	password := rand.Text()
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts("5432/tcp"),
		testcontainers.WithEnv(map[string]string{
			"POSTGRES_USER":     "postgres",
			"POSTGRES_PASSWORD": password,
			"POSTGRES_DB":       "postgres",
		}),
		testcontainers.WithCmd("postgres",
			"-c", "wal_level=logical",
			"-c", "max_replication_slots=64",
			"-c", "max_wal_senders=64",
			"-c", "max_connections=300",
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
		),
		// The entrypoint starts a temporary server to initialise the
		// database, then the real one: the second "ready" is the one. The
		// port is checked from outside only: the check inside runs an exec
		// session, whose conmon process Podman 4.3 leaves running.
		testcontainers.WithWaitStrategy(wait.ForAll(
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2),
			wait.ForListeningPort("5432/tcp").SkipInternalCheck(),
		).WithDeadline(3*time.Minute)),
	)
	if err != nil {
		return ctr, url.URL{}, fmt.Errorf("starting container %s: %w", image, err)
	}
	host, err := ctr.Host(ctx)
	if err != nil {
		return ctr, url.URL{}, fmt.Errorf("container %s: host: %w", image, err)
	}
	port, err := ctr.MappedPort(ctx, "5432/tcp")
	if err != nil {
		return ctr, url.URL{}, fmt.Errorf("container %s: port: %w", image, err)
	}
	return ctr, url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", password),
		Host:     net.JoinHostPort(host, port.Port()),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}, nil
}
