package synchro

import (
	"encoding/json"
	"strings"
	"testing"
)

// Test helpers that the tests of package synchro and the external tests
// (package synchro_test) share: this file is compiled into the package
// only for its tests.

// ContractColumns returns, per table of a schema contract, the names of
// its columns in contract order.
func ContractColumns(schema *SchemaResponse) map[string][]string {
	columns := map[string][]string{}
	for _, st := range schema.Tables {
		for _, c := range st.Columns {
			columns[st.TableName] = append(columns[st.TableName], c.Name)
		}
	}
	return columns
}

// JSONObjectKeys returns the keys of a JSON object in their order.
func JSONObjectKeys(t testing.TB, raw json.RawMessage) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("decoding %s: %v", raw, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("decoding %s: %v", raw, err)
		}
	}
	return keys
}

// LiveWaiting returns the number of PullWait calls of e waiting or reading.
func LiveWaiting(e *Engine) int { return e.live.waiting() }

// LiveNotes returns the number of change notifications e's Listen received.
func LiveNotes(e *Engine) int64 { return e.live.notes.Load() }

// LiveListens returns the number of sessions e's Listen started listening.
func LiveListens(e *Engine) int64 { return e.live.listens.Load() }

// LiveConnected reports whether e's Listen is listening.
func LiveConnected(e *Engine) bool {
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	return e.live.connected
}
