// Package changenote is the wire form of the notifications change capture
// sends after each changelog transaction, so that pulls waiting for changes
// (synchro's Engine.PullWait) in every process sharing the database wake.
//
// A note is the payload of a PostgreSQL NOTIFY on one channel: a JSON
// object naming the buckets the transaction wrote to, {"buckets":[...]},
// or {"all":true} when there were too many to name. PostgreSQL caps a
// payload below 8000 bytes, so one transaction's buckets are split over
// several notes, at most MaxNotes of them; past that a single "all" note
// replaces them. A receiver that cannot read a note treats it as "all":
// a note only ever costs a re-read, never a missed change.
package changenote

import (
	"encoding/json"
	"strings"
)

// Channel is the default notification channel.
const Channel = "synchro_changes"

// MaxPayload is the largest payload Encode produces, in bytes: below
// PostgreSQL's limit of 8000 with room to spare.
const MaxPayload = 7000

// MaxNotes bounds the notes of one transaction. A transaction touching
// more buckets than fit (tens of thousands of short bucket ids) sends one
// "all" note instead: every waiting pull re-reads once.
const MaxNotes = 32

// Note is one decoded notification.
type Note struct {
	// Buckets the transaction wrote changelog rows to.
	Buckets []string `json:"buckets,omitempty"`
	// All is set when the buckets are not listed: any bucket may have
	// changed.
	All bool `json:"all,omitempty"`
}

// allPayload is the payload of an "all" note.
const allPayload = `{"all":true}`

// Encode returns the payloads announcing changes to buckets, each at most
// MaxPayload bytes; none for no buckets. A bucket id too long to fit a
// payload alone, or more than MaxNotes payloads, give one "all" payload.
func Encode(buckets []string) []string {
	if len(buckets) == 0 {
		return nil
	}
	var out []string
	var b strings.Builder
	const head, tail = `{"buckets":[`, `]}`
	n := 0 // buckets in b
	for _, id := range buckets {
		q, err := json.Marshal(id)
		if err != nil || len(head)+len(q)+len(tail) > MaxPayload {
			return []string{allPayload}
		}
		if n > 0 && b.Len()+1+len(q)+len(tail) > MaxPayload {
			b.WriteString(tail)
			out = append(out, b.String())
			b.Reset()
			n = 0
			if len(out) == MaxNotes {
				return []string{allPayload}
			}
		}
		if n == 0 {
			b.WriteString(head)
		} else {
			b.WriteByte(',')
		}
		b.Write(q)
		n++
	}
	b.WriteString(tail)
	return append(out, b.String())
}

// EncodeAll returns the payloads of an "all" note: any bucket may have
// changed.
func EncodeAll() []string {
	return []string{allPayload}
}

// Decode reads a payload. A payload it cannot read, or one naming no
// bucket, decodes as an "all" note.
func Decode(payload string) Note {
	var n Note
	if err := json.Unmarshal([]byte(payload), &n); err != nil || len(n.Buckets) == 0 {
		return Note{All: true}
	}
	return n
}
