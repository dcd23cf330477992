package synchrohttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/synchrosync/synchro"
)

// DefaultMaxBodyBytes is the default request body cap: 4 MiB.
const DefaultMaxBodyBytes = 4 << 20

// DefaultRetryAfter is the default delay sent in the Retry-After header of a
// 503 response.
const DefaultRetryAfter = 5 * time.Second

// Config configures a Handler.
type Config struct {
	// Engine serves the requests. Required.
	Engine *synchro.Engine

	// UserID is the application's authentication: it returns the id of the
	// user making the request, which the engine receives exactly as
	// returned. An error, or an id that is empty or only white space,
	// answers 401 unauthenticated; the error is logged at Debug and not
	// sent. Called once per request, after the route, the method and the
	// X-App-Version header are checked and before the body is read.
	// Required.
	UserID func(*http.Request) (string, error)

	// MaxBodyBytes caps the request body; a longer body answers 413
	// body_too_large. Defaults to DefaultMaxBodyBytes; must not be
	// negative.
	MaxBodyBytes int64

	// RetryAfter is the delay sent, rounded up to whole seconds (at least
	// one), in the Retry-After header of 503 responses. The handler sends
	// no 429. Defaults to DefaultRetryAfter; must not be negative.
	RetryAfter time.Duration

	// Logger receives the failures (see the package documentation for the
	// levels). Defaults to slog.Default().
	Logger *slog.Logger

	// MaxPullWait caps the wait a pull may ask for with its "wait" query
	// parameter (see "Live sync" in the package documentation); longer
	// waits are clamped to it. Defaults to synchro.MaxPullWait (60 s),
	// which is also its maximum; must not be negative.
	MaxPullWait time.Duration
}

// withDefaults returns c with the zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxPullWait == 0 {
		c.MaxPullWait = synchro.MaxPullWait
	}
	return c
}

// validate reports the first invalid field of c.
func (c Config) validate() error {
	switch {
	case c.Engine == nil:
		return errors.New("synchrohttp: Config.Engine is required")
	case c.UserID == nil:
		return errors.New("synchrohttp: Config.UserID is required")
	case c.MaxBodyBytes < 0:
		return errors.New("synchrohttp: Config.MaxBodyBytes must not be negative")
	case c.RetryAfter < 0:
		return errors.New("synchrohttp: Config.RetryAfter must not be negative")
	case c.MaxPullWait < 0 || c.MaxPullWait > synchro.MaxPullWait:
		return fmt.Errorf("synchrohttp: Config.MaxPullWait must be between 0 and %v", synchro.MaxPullWait)
	}
	return nil
}

// Handler serves a synchro.Engine over HTTP. Build it with New; it is safe
// for concurrent use. The zero Handler answers every request with 500.
type Handler struct {
	engine  *synchro.Engine
	userID  func(*http.Request) (string, error)
	maxBody int64
	// retryAfter is the Retry-After header value, in seconds.
	retryAfter string
	logger     *slog.Logger
	// maxWait is Config.MaxPullWait.
	maxWait time.Duration
}

// New validates cfg and returns a Handler. It fails when Engine or UserID is
// nil, or when MaxBodyBytes or RetryAfter is negative.
func New(cfg Config) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Handler{
		engine:     cfg.Engine,
		userID:     cfg.UserID,
		maxBody:    cfg.MaxBodyBytes,
		retryAfter: retryAfterSeconds(cfg.RetryAfter),
		logger:     cfg.Logger,
		maxWait:    cfg.MaxPullWait,
	}, nil
}

// retryAfterSeconds renders d as a Retry-After value: whole seconds, rounded
// up, at least one.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if d > 0 && s <= 0 { // overflow of the rounding
		s = int64(d / time.Second)
	}
	return strconv.FormatInt(max(s, 1), 10)
}

// ServeHTTP routes the request by the part of its path after the last
// "/sync/" (see the package documentation): register, pull, push and
// snapshot take POST, tables and schema take GET and HEAD. Any other path is
// 404 not_found; a wrong method is 405 method_not_allowed with the Allow
// header set; an X-App-Version header below the engine's minimum client
// version is 426 upgrade_required.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.ready(w, r) {
		return
	}
	var path string
	if r.URL != nil {
		path = r.URL.Path
	}
	switch endpoint(path) {
	case "register":
		h.ServeRegister(w, r)
	case "pull":
		h.ServePull(w, r)
	case "push":
		h.ServePush(w, r)
	case "snapshot":
		h.ServeSnapshot(w, r)
	case "tables":
		h.ServeTables(w, r)
	case "schema":
		h.ServeSchema(w, r)
	default:
		h.fail(w, r, failure{status: http.StatusNotFound, code: codeNotFound, message: "no sync endpoint at this path"}, nil)
	}
}

// syncSegment marks the start of an endpoint name in a request path.
const syncSegment = "/sync/"

// endpoint returns the part of path after its last "/sync/", or "" when
// there is none.
func endpoint(path string) string {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	i := strings.LastIndex(path, syncSegment)
	if i < 0 {
		return ""
	}
	return path[i+len(syncSegment):]
}

// ServeRegister handles POST /sync/register: a synchro.RegisterRequest body,
// answered by Engine.RegisterClient with a synchro.RegisterResponse.
func (h *Handler) ServeRegister(w http.ResponseWriter, r *http.Request) {
	if h.ready(w, r) {
		servePost(h, w, r, h.engine.RegisterClient)
	}
}

// ServePull handles POST /sync/pull: a synchro.PullRequest body, answered by
// Engine.Pull with a synchro.PullResponse, or by Engine.PullWait when the
// query parameter "wait" asks to wait for a change (see "Live sync" in the
// package documentation). A client the engine refuses with
// synchro.ErrStaleClient or synchro.ErrSnapshotRequired gets a 200
// response with snapshot_required set, snapshot_reason "stale_client" or
// "snapshot_required", no changes and the request's checkpoint.
func (h *Handler) ServePull(w http.ResponseWriter, r *http.Request) {
	if !h.ready(w, r) {
		return
	}
	wait, err := h.pullWait(r)
	servePost(h, w, r, func(ctx context.Context, userID string, req *synchro.PullRequest) (*synchro.PullResponse, error) {
		if err != nil {
			return nil, err
		}
		return h.pull(ctx, userID, req, wait)
	})
}

// ServePush handles POST /sync/push: a synchro.PushRequest body, answered by
// Engine.Push with a synchro.PushResponse, status 200 even when records are
// rejected. The records are decoded one by one: one that cannot be decoded
// (see "Push records" in the package documentation) is rejected on its own
// and the others go to the engine. A client the engine refuses with
// synchro.ErrStaleClient gets every record rejected_terminal with reason
// stale_client.
func (h *Handler) ServePush(w http.ResponseWriter, r *http.Request) {
	if h.ready(w, r) {
		servePost(h, w, r, h.push)
	}
}

// ServeSnapshot handles POST /sync/snapshot: a synchro.SnapshotRequest body,
// answered by Engine.Snapshot with a synchro.SnapshotResponse.
func (h *Handler) ServeSnapshot(w http.ResponseWriter, r *http.Request) {
	if h.ready(w, r) {
		servePost(h, w, r, h.engine.Snapshot)
	}
}

// ServeTables handles GET (and HEAD) /sync/tables, answered by
// Engine.TableMetadata with a synchro.TableMetaResponse. The request body is
// not read.
func (h *Handler) ServeTables(w http.ResponseWriter, r *http.Request) {
	if h.ready(w, r) {
		serveGet(h, w, r, h.engine.TableMetadata)
	}
}

// ServeSchema handles GET (and HEAD) /sync/schema, answered by
// Engine.Schema with a synchro.SchemaResponse. The request body is not read.
func (h *Handler) ServeSchema(w http.ResponseWriter, r *http.Request) {
	if h.ready(w, r) {
		serveGet(h, w, r, h.engine.Schema)
	}
}

// ready reports whether h was built by New, answering 500 when it was not.
func (h *Handler) ready(w http.ResponseWriter, r *http.Request) bool {
	if h != nil && h.engine != nil && h.userID != nil && h.logger != nil {
		return true
	}
	slog.Default().ErrorContext(r.Context(), "synchrohttp: Handler used without New")
	writeErrorBody(w, http.StatusInternalServerError, errorBody{Code: codeInternal, Message: messageInternal})
	return false
}

// servePost runs a POST endpoint: method, app version, user, body, then
// call.
func servePost[Req, Resp any](h *Handler, w http.ResponseWriter, r *http.Request,
	call func(context.Context, string, *Req) (*Resp, error)) {
	if !h.allowMethod(w, r, http.MethodPost) || !h.checkAppVersion(w, r) {
		return
	}
	userID, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	req := new(Req)
	if f, err := h.readBody(w, r, req); err != nil {
		h.fail(w, r, f, err)
		return
	}
	respond(h, w, r, func(ctx context.Context) (*Resp, error) {
		return call(ctx, userID, req)
	})
}

// serveGet runs a GET endpoint: method, app version, user, then call.
func serveGet[Resp any](h *Handler, w http.ResponseWriter, r *http.Request,
	call func(context.Context) (*Resp, error)) {
	if !h.allowMethod(w, r, http.MethodGet, http.MethodHead) || !h.checkAppVersion(w, r) {
		return
	}
	if _, ok := h.authenticate(w, r); !ok {
		return
	}
	respond(h, w, r, call)
}

// respond calls the engine with the request's context and writes its
// response or its error.
func respond[Resp any](h *Handler, w http.ResponseWriter, r *http.Request, call func(context.Context) (*Resp, error)) {
	resp, err := call(r.Context())
	switch {
	case err != nil:
		h.writeError(w, r, err)
	case resp == nil:
		h.fail(w, r, internalFailure(), errors.New("synchrohttp: the engine returned neither a response nor an error"))
	default:
		h.writeResponse(w, r, resp)
	}
}

// allowMethod reports whether r's method is one of methods, answering 405
// with the Allow header when it is not.
func (h *Handler) allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	method := r.Method
	if method == "" {
		method = http.MethodGet // as net/http reads an empty method
	}
	for _, m := range methods {
		if method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	h.fail(w, r, failure{status: http.StatusMethodNotAllowed, code: codeMethodNotAllowed,
		message: "method " + strconv.Quote(method) + " is not allowed here; use " + strings.Join(methods, " or ")}, nil)
	return false
}

// AppVersionHeader is the request header in which a device sends its app
// version (a semantic version), checked against
// synchro.Config.MinClientVersion on every endpoint.
const AppVersionHeader = "X-App-Version"

// checkAppVersion reports whether r's X-App-Version header, when present
// and not blank, is at least the engine's minimum client version,
// answering 426 upgrade_required when it is not.
func (h *Handler) checkAppVersion(w http.ResponseWriter, r *http.Request) bool {
	v := r.Header.Get(AppVersionHeader)
	if strings.TrimSpace(v) == "" {
		return true
	}
	if err := h.engine.CheckAppVersion(v); err != nil {
		h.fail(w, r, failure{status: http.StatusUpgradeRequired, code: codeUpgradeRequired,
			message: err.Error(), level: slog.LevelDebug}, err)
		return false
	}
	return true
}

// authenticate returns the user id Config.UserID gives for r, answering 401
// when there is none.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := h.userID(r)
	if err == nil && strings.TrimSpace(id) == "" {
		err = errors.New("synchrohttp: Config.UserID returned an empty user id")
	}
	if err != nil {
		h.fail(w, r, failure{status: http.StatusUnauthorized, code: codeUnauthenticated, message: "authentication required", level: slog.LevelDebug}, err)
		return "", false
	}
	return id, true
}
