package synchro

import (
	"errors"
	"fmt"
)

// requestError is a client mistake that no documented sentinel describes: a
// missing client_id, a batch over the size limit, a malformed request. Its
// message is safe to show to the client.
//
// Adapters recognise it without importing an unexported type through the
// method set: errors.As(err, &x) with x of an interface type that has
// BadRequest() bool.
type requestError struct {
	msg string
	// cause is the documented sentinel the mistake is an instance of, if
	// any; errors.Is finds it.
	cause error
}

func (e *requestError) Error() string { return e.msg }

// Unwrap returns the sentinel the error is an instance of, or nil.
func (e *requestError) Unwrap() error { return e.cause }

// BadRequest reports that the error is the caller's mistake.
func (e *requestError) BadRequest() bool { return true }

// badRequest returns a *requestError with a formatted message.
func badRequest(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// badRequestWrap returns a *requestError that wraps the sentinel cause; the
// message is the formatted text followed by cause's.
func badRequestWrap(cause error, format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...) + ": " + cause.Error(), cause: cause}
}

// isBadRequest reports whether err is, or wraps, a requestError.
func isBadRequest(err error) bool {
	var re *requestError
	return errors.As(err, &re)
}
