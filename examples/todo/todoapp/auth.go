package todoapp

import (
	"errors"
	"net/http"
	"strings"
	"unicode"
)

// maxUserLen bounds a demo user name.
const maxUserLen = 64

// DemoUserID is the DEMO-ONLY authentication of this example, passed to
// synchrohttp as Config.UserID: the header "Authorization: Bearer <user>"
// names the user, and the server believes it. Anyone who can reach the
// server can read and write every user's data by naming that user.
//
// A real application replaces this function with its own: verify a session
// cookie or a signed token (OIDC, JWT, ...) and return the user id it
// proves. Never deploy this one.
func DemoUserID(r *http.Request) (string, error) {
	scheme, user, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errors.New(`want the header "Authorization: Bearer <user>"`)
	}
	user = strings.TrimSpace(user)
	if user == "" || len(user) > maxUserLen {
		return "", errors.New("the user name must have 1 to 64 bytes")
	}
	for _, r := range user {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return "", errors.New("the user name must be printable, without spaces")
		}
	}
	return user, nil
}
