package synchrohttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/synchrosync/synchro"
)

// This file decodes push requests record by record and answers pushes and
// pulls from clients that must snapshot again.

// maxPushRecords is the limit of synchro.Engine.Push on the records of one
// request. The handler counts every record of the request against it,
// those it rejects itself included: a larger request is refused whole.
const maxPushRecords = 1000

// The reason codes of the results the handler makes itself.
const (
	reasonInvalidData      = "invalid_data"
	reasonInvalidOperation = "invalid_operation"
	reasonStaleClient      = "stale_client"
)

// The snapshot_reason values of the pull answers the handler makes itself.
const (
	snapshotReasonStaleClient = "stale_client"
	snapshotReasonRequired    = "snapshot_required"
)

// messageStaleRecord is the message of each record of a stale client's
// push.
const messageStaleRecord = "the client is stale: this change was not applied; " +
	"pull, then rebuild the local database from a new snapshot"

// pushRequest is the wire form of a push request. Its records are kept raw
// and decoded one by one (decodePushRecord), so that a bad record is
// rejected on its own; the other fields must be well formed.
type pushRequest struct {
	ClientID      string            `json:"client_id"`
	Changes       []json.RawMessage `json:"changes"`
	SchemaVersion int64             `json:"schema_version"`
	SchemaHash    string            `json:"schema_hash"`
}

// pushRecordFields are the fields of one pushed record, each kept raw: it
// decodes from any JSON object.
type pushRecordFields struct {
	ID              json.RawMessage `json:"id"`
	TableName       json.RawMessage `json:"table_name"`
	Operation       json.RawMessage `json:"operation"`
	Data            json.RawMessage `json:"data"`
	ClientUpdatedAt json.RawMessage `json:"client_updated_at"`
	BaseUpdatedAt   json.RawMessage `json:"base_updated_at"`
}

// requestError is a request the handler refuses after decoding it; it is
// answered 400 bad_request (classify reads BadRequest) with its text.
type requestError string

func (e requestError) Error() string { return string(e) }

// BadRequest reports that the error is the caller's mistake.
func (requestError) BadRequest() bool { return true }

// push decodes the records of req one by one, has the engine apply those
// that decode and answers with the results of all of them: the rejected
// list holds first the records rejected here, in request order, then the
// engine's. A stale client gets every record rejected (stalePush).
func (h *Handler) push(ctx context.Context, userID string, req *pushRequest) (*synchro.PushResponse, error) {
	if n := len(req.Changes); n > maxPushRecords {
		return nil, requestError(fmt.Sprintf("push of %d records exceeds the limit of %d per request", n, maxPushRecords))
	}
	ereq := &synchro.PushRequest{
		ClientID:      req.ClientID,
		Changes:       make([]synchro.PushRecord, 0, len(req.Changes)),
		SchemaVersion: req.SchemaVersion,
		SchemaHash:    req.SchemaHash,
	}
	rejected := []synchro.PushResult{}
	for i, raw := range req.Changes {
		rec, bad := decodePushRecord(i, raw)
		if bad != nil {
			rejected = append(rejected, *bad)
			continue
		}
		ereq.Changes = append(ereq.Changes, rec)
	}
	// Even with no record left the engine runs: it checks the client and
	// the schema, which decide the answer.
	resp, err := h.engine.Push(ctx, userID, ereq)
	switch {
	case errors.Is(err, synchro.ErrStaleClient):
		return h.stalePush(ctx, ereq.Changes, rejected, err)
	case err != nil || resp == nil:
		return resp, err
	}
	resp.Rejected = append(rejected, resp.Rejected...)
	return resp, nil
}

// stalePush answers the push of a client the engine refused as stale: 200,
// every record that reached the engine rejected_terminal with reason
// stale_client after those rejected while decoding, checkpoint 0. The SDKs
// push before they pull and retry a push with a retryable rejection
// without pulling; a terminal answer lets them go on to the pull, which
// tells them to snapshot again.
func (h *Handler) stalePush(ctx context.Context, records []synchro.PushRecord, rejected []synchro.PushResult, cause error) (*synchro.PushResponse, error) {
	version, hash, err := h.engine.CurrentSchemaManifest(ctx)
	if err != nil {
		return nil, err
	}
	h.logger.DebugContext(ctx, "synchrohttp: push of a stale client rejected", "records", len(records), "error", cause)
	for _, rec := range records {
		rejected = append(rejected, synchro.PushResult{
			ID:         rec.ID,
			TableName:  rec.TableName,
			Operation:  rec.Operation,
			Status:     synchro.PushStatusRejectedTerminal,
			ReasonCode: reasonStaleClient,
			Message:    messageStaleRecord,
		})
	}
	return &synchro.PushResponse{
		Accepted:      []synchro.PushResult{},
		Rejected:      rejected,
		ServerTime:    time.Now().UTC(),
		SchemaVersion: version,
		SchemaHash:    hash,
	}, nil
}

// pull has the engine answer a pull; a client the engine refuses as stale
// or as needing a snapshot gets a 200 snapshot-required answer instead of
// an error (see snapshotAnswer).
func (h *Handler) pull(ctx context.Context, userID string, req *synchro.PullRequest, wait time.Duration) (*synchro.PullResponse, error) {
	resp, err := h.engine.PullWait(ctx, userID, req, wait)
	switch {
	case errors.Is(err, synchro.ErrStaleClient):
		return h.snapshotAnswer(ctx, req, snapshotReasonStaleClient, err)
	case errors.Is(err, synchro.ErrSnapshotRequired):
		return h.snapshotAnswer(ctx, req, snapshotReasonRequired, err)
	}
	return resp, err
}

// snapshotAnswer is the pull response telling a client to snapshot again:
// no changes, the request's checkpoint, the server's contract.
func (h *Handler) snapshotAnswer(ctx context.Context, req *synchro.PullRequest, reason string, cause error) (*synchro.PullResponse, error) {
	version, hash, err := h.engine.CurrentSchemaManifest(ctx)
	if err != nil {
		return nil, err
	}
	h.logger.DebugContext(ctx, "synchrohttp: pull answered with snapshot_required", "reason", reason, "error", cause)
	return &synchro.PullResponse{
		Changes:          []synchro.Record{},
		Deletes:          []synchro.DeleteEntry{},
		Checkpoint:       req.Checkpoint,
		SnapshotRequired: true,
		SnapshotReason:   reason,
		SchemaVersion:    version,
		SchemaHash:       hash,
	}, nil
}

// decodePushRecord reads record i of a push. It returns the record for the
// engine, or, when the record cannot reach it, the record's result: a
// rejected_terminal with reason invalid_operation for a bad operation and
// invalid_data for anything else, echoing id, table_name and operation
// when they are strings.
//
// The record must be a JSON object. id, table_name and operation must be
// strings (absent or null read as ""), the operation one of create, update
// and delete. data must be a JSON object for a create or an update; a
// delete's is not read. client_updated_at and base_updated_at must be
// strings parseTimestamp reads, or null or absent: then
// client_updated_at is the zero time and base_updated_at is none.
func decodePushRecord(i int, raw json.RawMessage) (synchro.PushRecord, *synchro.PushResult) {
	var rec synchro.PushRecord
	res := &synchro.PushResult{Status: synchro.PushStatusRejectedTerminal}
	field := func(name string) string { return "changes[" + strconv.Itoa(i) + "]" + name }
	reject := func(reason, format string, args ...any) (synchro.PushRecord, *synchro.PushResult) {
		res.ReasonCode, res.Message = reason, fmt.Sprintf(format, args...)
		return synchro.PushRecord{}, res
	}

	if kind := rawKind(raw); kind != "an object" {
		return reject(reasonInvalidData, "%s must be a JSON object, not %s", field(""), kind)
	}
	var f pushRecordFields
	if err := json.Unmarshal(raw, &f); err != nil { // cannot happen: every field is raw
		return reject(reasonInvalidData, "%s: %v", field(""), describeDecodeError(err))
	}

	id, idOK := stringValue(f.ID)
	table, tableOK := stringValue(f.TableName)
	op, opOK := stringValue(f.Operation)
	res.ID, res.TableName, res.Operation = id, table, op
	switch {
	case !idOK:
		return reject(reasonInvalidData, "%s must be a string, not %s", field(".id"), rawKind(f.ID))
	case !tableOK:
		return reject(reasonInvalidData, "%s must be a string, not %s", field(".table_name"), rawKind(f.TableName))
	case !opOK:
		return reject(reasonInvalidOperation, "%s must be a string, not %s", field(".operation"), rawKind(f.Operation))
	}
	parsed, ok := synchro.ParseOperation(op)
	if !ok {
		return reject(reasonInvalidOperation, "%s: unknown operation %s (want create, update or delete)", field(".operation"), quoteShort(op))
	}
	rec.ID, rec.TableName, rec.Operation = id, table, op

	switch kind := rawKind(f.Data); {
	case kind == "an object":
		rec.Data = f.Data
	case parsed != synchro.OpDelete:
		return reject(reasonInvalidData, "%s must be a JSON object for %s %s, not %s", field(".data"), article(op), op, kind)
	}

	clientAt, present, err := timestampValue(f.ClientUpdatedAt)
	if err != nil {
		return reject(reasonInvalidData, "%s: %v", field(".client_updated_at"), err)
	}
	if present {
		rec.ClientUpdatedAt = clientAt
	}
	baseAt, present, err := timestampValue(f.BaseUpdatedAt)
	if err != nil {
		return reject(reasonInvalidData, "%s: %v", field(".base_updated_at"), err)
	}
	if present {
		rec.BaseUpdatedAt = &baseAt
	}
	return rec, nil
}

// stringValue reads a raw JSON value that must be a string or null (or
// absent, read as ""); ok is false for any other value.
func stringValue(raw json.RawMessage) (s string, ok bool) {
	if isNull(raw) {
		return "", true
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// timestampValue reads a raw JSON timestamp: present is false for null or
// absent. The error explains a value that is not a string parseTimestamp
// reads.
func timestampValue(raw json.RawMessage) (t time.Time, present bool, err error) {
	if isNull(raw) {
		return time.Time{}, false, nil
	}
	s, ok := stringValue(raw)
	if !ok {
		return time.Time{}, false, fmt.Errorf("must be a string, not %s", rawKind(raw))
	}
	t, err = parseTimestamp(s)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%s is %w", quoteShort(s), err)
	}
	return t, true, nil
}

// isNull reports whether a raw field is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// rawKind names the kind of a raw JSON value, "null" for an absent one.
func rawKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "null"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// article is "a" or "an" for an operation name.
func article(op string) string {
	if op == "update" {
		return "an"
	}
	return "a"
}

// maxQuoted bounds the bytes of a request value quoted in a message.
const maxQuoted = 64

// quoteShort quotes s for a message, cut to maxQuoted bytes.
func quoteShort(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}
