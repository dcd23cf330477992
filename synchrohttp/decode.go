package synchrohttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// This file reads and decodes request bodies.

// readBody checks r's Content-Type, reads its body (at most h.maxBody bytes)
// and decodes it into dst (see decodeJSON). On failure it returns how to answer and
// the cause.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, dst any) (failure, error) {
	if ct := r.Header.Get("Content-Type"); !jsonContentType(ct) {
		f := failure{status: http.StatusUnsupportedMediaType, code: codeUnsupportedMedia, level: slog.LevelDebug,
			message: "Content-Type must be application/json"}
		return f, fmt.Errorf("synchrohttp: Content-Type %q", ct)
	}
	tooLarge := failure{status: http.StatusRequestEntityTooLarge, code: codeBodyTooLarge, level: slog.LevelDebug,
		message: fmt.Sprintf("the request body is larger than %d bytes", h.maxBody)}
	if r.ContentLength > h.maxBody {
		return tooLarge, fmt.Errorf("synchrohttp: Content-Length %d", r.ContentLength)
	}
	var data []byte
	if r.Body != nil {
		var err error
		data, err = io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return tooLarge, err
		case err != nil && errors.Is(r.Context().Err(), context.Canceled):
			return failure{status: statusClientClosedRequest, code: codeCanceled, message: messageCanceled, level: slog.LevelDebug}, err
		case err != nil:
			return failure{status: http.StatusBadRequest, code: codeBadRequest, level: slog.LevelDebug,
				message: "the request body could not be read"}, err
		}
	}
	if err := decodeJSON(data, dst); err != nil {
		return failure{status: http.StatusBadRequest, code: codeBadRequest, message: err.Error(), level: slog.LevelDebug}, err
	}
	return failure{}, nil
}

// jsonContentType reports whether a Content-Type header value is
// acceptable: absent, application/json or application/*+json, with no
// charset or UTF-8.
func jsonContentType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")
}

// decodeJSON decodes data, which must hold exactly one JSON object, into
// dst (a pointer to a struct). Unknown fields are ignored: newer clients
// add fields. Its errors describe the problem in terms the client can act
// on and are safe to send.
func decodeJSON(data []byte, dst any) error {
	start := bytes.TrimLeft(data, " \t\r\n")
	if len(start) == 0 {
		return errors.New("the request body is empty; it must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if start[0] != '{' {
		var v any
		if err := dec.Decode(&v); err != nil {
			return describeDecodeError(err)
		}
		return fmt.Errorf("the request body must be a JSON object, not %s", jsonKindOf(v))
	}
	if err := dec.Decode(dst); err != nil {
		return describeDecodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the request body must hold exactly one JSON object; data follows it")
	}
	return nil
}

// describeDecodeError explains an error of encoding/json.
func describeDecodeError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("malformed JSON at byte offset %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return fmt.Errorf("the request body must be a JSON object, not %s", typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Errorf("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("malformed JSON: the request body ends inside a value")
	default:
		return fmt.Errorf("invalid request body: %v", err)
	}
}

// jsonKind describes the JSON values a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	default:
		return "of another type"
	}
}

// jsonKindOf names the kind of a value decoded into an interface.
func jsonKindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return "an object"
	}
}
