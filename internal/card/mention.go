package card

import "regexp"

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]+$`)

// Mention names who acted: a Slack user id as a mention Slack renders, and
// anyone else (a person signed in on the web) by the name they signed in
// with.
func Mention(user string) string {
	if slackUserID.MatchString(user) {
		return "<@" + user + ">"
	}
	return user
}
