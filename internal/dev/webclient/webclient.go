// Package webclient is a test's browser without the browser: it signs in
// to Rebook's web pages as a local user through the real sign-in form,
// keeps the session cookie, and posts forms with the session's CSRF token.
package webclient

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Client is one signed-in person (or, before SignIn, nobody).
type Client struct {
	t    testing.TB
	Base string
	HTTP *http.Client
	CSRF string
}

// New is a client with its own cookies that does not follow redirects,
// so a test sees each answer as it is.
func New(t testing.TB, base string) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{t: t, Base: base, HTTP: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// SignIn signs in as the local user name, and reads the session's CSRF
// token from a page.
func (c *Client) SignIn(name string) *Client {
	_, page := c.Get("/signin")
	m := csrfInput.FindStringSubmatch(page)
	require.NotNil(c.t, m, "the sign-in page has a form")
	resp, _ := c.Post("/signin/local", url.Values{"csrf": {m[1]}, "user": {name}, "next": {"/requests"}})
	require.Equal(c.t, http.StatusSeeOther, resp.StatusCode, "local sign-in as %s", name)
	_, page = c.Get("/signin")
	m = regexp.MustCompile(`action="/signout"><input type="hidden" name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	require.NotNil(c.t, m, "a signed-in page carries the CSRF token")
	c.CSRF = m[1]
	return c
}

// Get fetches path as a browser would (Accept: text/html).
func (c *Client) Get(path string) (*http.Response, string) {
	req, err := http.NewRequest(http.MethodGet, c.Base+path, nil)
	require.NoError(c.t, err)
	req.Header.Set("Accept", "text/html")
	return c.do(req)
}

// Post submits a form to path.
func (c *Client) Post(path string, form url.Values) (*http.Response, string) {
	req, err := http.NewRequest(http.MethodPost, c.Base+path, strings.NewReader(form.Encode()))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// Form submits a form with the session's CSRF token added.
func (c *Client) Form(path string, form url.Values) (*http.Response, string) {
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.CSRF)
	return c.Post(path, form)
}

func (c *Client) do(req *http.Request) (*http.Response, string) {
	resp, err := c.HTTP.Do(req)
	require.NoError(c.t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp, string(b)
}
