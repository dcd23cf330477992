package wal

import "github.com/synchrosync/synchro/internal/jsonbtext"

// This file decides how a rule failure's payload goes into
// synchro.rule_failures.payload (jsonb) without a savepoint.
//
// The payload is the row as JSON. PostgreSQL's json type checks only the
// grammar, so a json column can hold text that jsonb refuses: a \u0000
// escape, a lone surrogate escape, a number beyond numeric's range, an
// escape of a character the server's encoding lacks. A refused payload
// used to be caught by a savepoint per failure; past 64 of them in one
// transaction (a broken rule meeting a bulk update, or a first start's
// record of a large table) the transaction's subtransactions overflow
// PostgreSQL's per-backend cache, and every snapshot taken on the server
// costs more until it commits. Instead, judgePayload reads the text and
// keeps it as jsonb only where jsonb surely takes it (package jsonbtext);
// any other payload is kept as a JSON string of its text (to_jsonb of
// text, which takes any text), so nothing of it is lost and nothing can
// fail the statement.

// How a payload is written (the verdicts of judgePayload and the codes
// of store.InsertRuleFailures).
const (
	payloadNone     int16 = 0 // no payload: NULL
	payloadAsString int16 = 1 // a JSON string of the text
	payloadIfUTF8   int16 = 2 // as jsonb when the server's encoding is UTF8, else as a string
	payloadAsJSONB  int16 = 3 // as jsonb
)

// maxPayloadLen is the largest payload kept at all. A jsonb string, like a
// jsonb container, holds at most 2^28-1 bytes; a row that large is kept
// without its payload rather than failing capture.
const maxPayloadLen = 1 << 27

// judgePayload says how p, a JSON text (valid: encoding/json wrote it),
// goes into the payload column: as jsonb only where jsonb surely takes it
// (jsonbtext.Judge), as a string of its text otherwise.
func judgePayload(p []byte) int16 {
	switch {
	case len(p) == 0 || len(p) > maxPayloadLen:
		return payloadNone
	}
	switch jsonbtext.Judge(p) {
	case jsonbtext.Surely:
		return payloadAsJSONB
	case jsonbtext.IfUTF8:
		return payloadIfUTF8
	}
	return payloadAsString
}
