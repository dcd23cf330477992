package synchrohttp

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/internal/pgerr"
)

// This file maps errors to responses and writes the responses.

// The stable error codes of the package documentation.
const (
	codeBadRequest          = "bad_request"
	codeUnauthenticated     = "unauthenticated"
	codeNotFound            = "not_found"
	codeClientNotRegistered = "client_not_registered"
	codeMethodNotAllowed    = "method_not_allowed"
	codeSchemaMismatch      = "schema_mismatch"
	codeStaleClient         = "stale_client"
	codeSnapshotRequired    = "snapshot_required"
	codeBodyTooLarge        = "body_too_large"
	codeUnsupportedMedia    = "unsupported_media_type"
	codeUpgradeRequired     = "upgrade_required"
	codeCanceled            = "canceled"
	codeInternal            = "internal"
	codeUnavailable         = "unavailable"
)

// statusClientClosedRequest is the status logged (and written, though
// nobody reads it) when the client went away: nginx's 499.
const statusClientClosedRequest = 499

// Fixed messages of the responses that must not reveal their cause.
const (
	messageInternal    = "internal server error"
	messageUnavailable = "the service is temporarily unavailable; retry later"
	messageCanceled    = "the request was canceled"
	messageBadText     = "the request contains text the database cannot store, such as a NUL character"
)

// errorBody is the JSON body of every error response.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Error is what the SDKs show: the message, except for
	// upgrade_required, where it is the minimum app version.
	Error string `json:"error"`
	// The server's contract, sent with schema_mismatch only, under the
	// names this package has always used and those the SDKs read.
	SchemaVersion       *int64  `json:"schema_version,omitempty"`
	SchemaHash          *string `json:"schema_hash,omitempty"`
	ServerSchemaVersion *int64  `json:"server_schema_version,omitempty"`
	ServerSchemaHash    *string `json:"server_schema_hash,omitempty"`
}

// failure is how a request failed: what to answer and how to log it.
type failure struct {
	status  int
	code    string
	message string
	level   slog.Level
}

func internalFailure() failure {
	return failure{status: http.StatusInternalServerError, code: codeInternal, message: messageInternal, level: slog.LevelError}
}

// classify maps an error of the engine to a failure. clientGone reports
// that the request's context was canceled: the client went away. The order
// of the cases is the one documented in the package documentation.
func classify(err error, clientGone bool) failure {
	client := func(status int, code string) failure {
		return failure{status: status, code: code, message: err.Error(), level: slog.LevelDebug}
	}
	switch {
	case clientGone && (errors.Is(err, context.Canceled) || pgerr.Code(err) == pgerr.QueryCanceled):
		return failure{status: statusClientClosedRequest, code: codeCanceled, message: messageCanceled, level: slog.LevelDebug}
	case errors.Is(err, synchro.ErrSchemaMismatch):
		return client(http.StatusConflict, codeSchemaMismatch)
	case errors.Is(err, synchro.ErrClientNotRegistered):
		return client(http.StatusNotFound, codeClientNotRegistered)
	case errors.Is(err, synchro.ErrUpgradeRequired):
		return client(http.StatusUpgradeRequired, codeUpgradeRequired)
	case errors.Is(err, synchro.ErrStaleClient):
		// Pull and push answer 200 instead (see ServePull, ServePush).
		return client(http.StatusForbidden, codeStaleClient)
	case errors.Is(err, synchro.ErrSnapshotRequired):
		// Pull answers 200 instead (see ServePull).
		return client(http.StatusGone, codeSnapshotRequired)
	case isBadRequest(err):
		return client(http.StatusBadRequest, codeBadRequest)
	case pgerr.Code(err) == pgerr.CharacterNotInRepertoire:
		// Only text from the request can hold a NUL: the engine passed
		// one on to PostgreSQL, whose message is not for the client.
		return failure{status: http.StatusBadRequest, code: codeBadRequest, message: messageBadText, level: slog.LevelDebug}
	case isTransient(err):
		return failure{status: http.StatusServiceUnavailable, code: codeUnavailable, message: messageUnavailable, level: slog.LevelWarn}
	default:
		return internalFailure()
	}
}

// isBadRequest reports whether err is the caller's mistake: an error in
// its chain says so through BadRequest() bool (the engine's request errors
// do), or it is a sentinel that only a bad request produces.
func isBadRequest(err error) bool {
	if errors.Is(err, synchro.ErrTableNotRegistered) || errors.Is(err, synchro.ErrInvalidOperation) {
		return true
	}
	var br interface{ BadRequest() bool }
	return errors.As(err, &br) && br.BadRequest()
}

// isTransient reports whether err is a failure that retrying later may
// cure: see "Transient failures" in the package documentation. A
// PostgreSQL error is decided by pgerr.Transient, which says why it is
// narrower than the push's pgerr.RecordRetryable.
func isTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server answered: its code decides, even when a network
		// error is also in the chain.
		return pgerr.Transient(pgErr.Code)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// writeError answers r with the failure err maps to. A schema mismatch
// carries the server's current contract; when reading it fails, that
// failure is answered instead.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	f := classify(err, errors.Is(ctx.Err(), context.Canceled))
	if f.code != codeSchemaMismatch {
		h.fail(w, r, f, err)
		return
	}
	version, hash, merr := h.engine.CurrentSchemaManifest(ctx)
	if merr != nil {
		mf := classify(merr, errors.Is(ctx.Err(), context.Canceled))
		if mf.code == codeSchemaMismatch {
			mf = internalFailure()
		}
		h.fail(w, r, mf, errors.Join(err, merr))
		return
	}
	h.log(r, f, err)
	writeErrorBody(w, f.status, errorBody{Code: f.code, Message: f.message,
		SchemaVersion: &version, SchemaHash: &hash, ServerSchemaVersion: &version, ServerSchemaHash: &hash})
}

// fail logs and answers a failure; err is its cause, or nil.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, f failure, err error) {
	h.log(r, f, err)
	if f.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", h.retryAfter)
	}
	body := errorBody{Code: f.code, Message: f.message}
	if f.code == codeUpgradeRequired {
		body.Error = h.engine.MinClientVersion()
	}
	writeErrorBody(w, f.status, body)
}

// log records a failure at its level.
func (h *Handler) log(r *http.Request, f failure, err error) {
	ctx := r.Context()
	if !h.logger.Enabled(ctx, f.level) {
		return
	}
	attrs := []any{"status", f.status, "code", f.code, "method", r.Method}
	if r.URL != nil {
		attrs = append(attrs, "path", r.URL.Path)
	}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	h.logger.Log(ctx, f.level, "synchrohttp: request failed", attrs...)
}

// writeResponse answers 200 with the engine's response.
func (h *Handler) writeResponse(w http.ResponseWriter, r *http.Request, resp any) {
	body, err := json.Marshal(resp)
	if err != nil {
		h.fail(w, r, internalFailure(), err)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// writeErrorBody answers with status and the error body v; an empty
// v.Error is set to v.Message.
func writeErrorBody(w http.ResponseWriter, status int, v errorBody) {
	if v.Error == "" {
		v.Error = v.Message
	}
	body, err := json.Marshal(v)
	if err != nil { // impossible: strings and numbers only
		body = []byte(`{"code":"internal","message":"internal server error","error":"internal server error"}`)
		status = http.StatusInternalServerError
	}
	writeBody(w, status, body)
}

// writeBody writes a JSON body. A failed write means the client went away;
// there is nobody to tell.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
