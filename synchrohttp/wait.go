package synchrohttp

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// This file reads the "wait" query parameter of a pull (long polling).

// waitParam is the query parameter of a pull asking to wait for a change.
const waitParam = "wait"

// maxWaitText bounds the length of a wait value: digits enough for any
// wait that is not clamped, and a fraction.
const maxWaitText = 32

// pullWait reads r's wait parameter: 0 when absent, else the wait in
// seconds, a decimal number such as "20" or "2.5", clamped to h.maxWait.
// Anything else (a sign, an exponent, "NaN", two values, an empty value)
// is a request error (400 bad_request).
func (h *Handler) pullWait(r *http.Request) (time.Duration, error) {
	if r.URL == nil {
		return 0, nil
	}
	values, ok := r.URL.Query()[waitParam]
	if !ok {
		return 0, nil
	}
	if len(values) != 1 {
		return 0, requestError(fmt.Sprintf("query parameter %s given %d times; give it once", waitParam, len(values)))
	}
	v := values[0]
	secs, err := parseSeconds(v)
	if err != nil {
		return 0, requestError(fmt.Sprintf("query parameter %s=%.*q: %v", waitParam, maxWaitText, v, err))
	}
	if secs >= h.maxWait.Seconds() {
		return h.maxWait, nil
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// parseSeconds reads a non-negative decimal number of seconds: digits,
// optionally a point and more digits.
func parseSeconds(v string) (float64, error) {
	const want = "want a number of seconds such as 20 or 2.5"
	if v == "" || len(v) > maxWaitText {
		return 0, fmt.Errorf("%s", want)
	}
	digits, points := 0, 0
	for _, c := range []byte(v) {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			points++
		default:
			return 0, fmt.Errorf("%s", want)
		}
	}
	if digits == 0 || points > 1 {
		return 0, fmt.Errorf("%s", want)
	}
	return strconv.ParseFloat(v, 64)
}
