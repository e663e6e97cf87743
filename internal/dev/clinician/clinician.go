// Package clinician does what a clinician does with a grant link, for the
// tests and the chaos run: opens it and presses Continue on the page it
// shows, as a browser would (cookies kept, the page's token posted back).
package clinician

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

var grantInputs = regexp.MustCompile(`name="(link|csrf)" value="([^"]+)"`)

// ConfirmGrant opens a grant link and presses Continue on the page it
// shows. c follows redirects or not as the caller chose; it is given its
// own cookies, since the page's token comes back as one. The answer's body
// is returned read.
func ConfirmGrant(c *http.Client, link string) (*http.Response, string, error) {
	jar, _ := cookiejar.New(nil)
	cc := *c
	cc.Jar = jar
	resp, page, err := fetch(&cc, http.MethodGet, link, nil)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, page, fmt.Errorf("opening the grant link: %s", resp.Status)
	}
	form := url.Values{}
	for _, m := range grantInputs.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if len(form) != 2 {
		return resp, page, fmt.Errorf("the grant link's page has no Continue form")
	}
	u, err := url.Parse(link)
	if err != nil {
		return nil, "", err
	}
	return fetch(&cc, http.MethodPost, u.Scheme+"://"+u.Host+"/oauth/start", form)
}

func fetch(c *http.Client, method, u string, form url.Values) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}
