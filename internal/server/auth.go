package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Credentials are what Alertmanager's http_config sends: a bearer token
// (authorization: {type: Bearer, credentials_file: …}) or basic auth
// (basic_auth: {username, password_file}). Exactly one is set.
type Credentials struct {
	BearerToken string
	Username    string
	Password    string
}

// String keeps secrets out of every log line that prints Credentials.
func (c Credentials) String() string {
	switch {
	case c.BearerToken != "":
		return "bearer token (redacted)"
	case c.Username != "":
		return "basic auth for " + c.Username + " (password redacted)"
	}
	return "none"
}

// equal compares in constant time, independent of where the inputs differ
// and of their lengths (both sides are hashed first).
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	cred := s.opts.Auth
	return func(c echo.Context) error {
		req := c.Request()
		ok := false
		if cred.BearerToken != "" {
			scheme, token, found := strings.Cut(req.Header.Get(echo.HeaderAuthorization), " ")
			ok = found && strings.EqualFold(scheme, "Bearer") && equal(strings.TrimSpace(token), cred.BearerToken)
		} else {
			user, pass, found := req.BasicAuth()
			// Evaluate both so a wrong user costs the same as a wrong password.
			userOK, passOK := equal(user, cred.Username), equal(pass, cred.Password)
			ok = found && userOK && passOK
		}
		if !ok {
			s.metrics.authFailures.Inc()
			if cred.BearerToken != "" {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="smartscale"`)
			} else {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="smartscale"`)
			}
			return c.JSON(http.StatusUnauthorized, errorBody{Error: "missing or wrong credentials", Field: "Authorization"})
		}
		return next(c)
	}
}
