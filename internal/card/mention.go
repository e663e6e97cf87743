package card

import (
	"regexp"
	"strings"
)

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]+$`)

// teamsPrefix marks a Teams user: "teams:" + Entra object id + ":" +
// display name. The object id is what Teams mentions and what stays the
// same when the name changes.
const teamsPrefix = "teams:"

// TeamsUser is how a Teams user who pressed a button is recorded.
func TeamsUser(objectID, name string) string {
	return teamsPrefix + objectID + ":" + strings.TrimSpace(name)
}

// ParseTeamsUser reads TeamsUser's form.
func ParseTeamsUser(user string) (objectID, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, teamsPrefix)
	if !ok {
		return "", "", false
	}
	objectID, name, ok = strings.Cut(rest, ":")
	return objectID, name, ok && objectID != ""
}

// Mention names who acted: a Slack user id as a mention Slack renders, a
// Teams user by their display name (Teams' own mention is added by its
// layout), and anyone else (a person signed in on the web) by the name
// they signed in with.
func Mention(user string) string {
	if slackUserID.MatchString(user) {
		return "<@" + user + ">"
	}
	if _, name, ok := ParseTeamsUser(user); ok {
		return name
	}
	return user
}
