package card

import "testing"

func TestMention(t *testing.T) {
	for in, want := range map[string]string{
		"U012AB3CD":        "<@U012AB3CD>", // a Slack user
		"W0G1ANT2C":        "<@W0G1ANT2C>", // an Enterprise Grid user
		"U1":               "<@U1>",
		"sam@trust.nhs.uk": "sam@trust.nhs.uk", // signed in on the web
		"dev":              "dev",
		"Ubuntu":           "Ubuntu",
	} {
		if got := Mention(in); got != want {
			t.Errorf("Mention(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTeamsUsersAreShownByName(t *testing.T) {
	u := TeamsUser("6b7b3b2a-2c4b-4175-8582-41c9e685c1b5", "Jane Smith")
	oid, name, ok := ParseTeamsUser(u)
	if !ok || oid != "6b7b3b2a-2c4b-4175-8582-41c9e685c1b5" || name != "Jane Smith" {
		t.Fatalf("ParseTeamsUser(%q) = %q, %q, %v", u, oid, name, ok)
	}
	if got := Mention(u); got != "Jane Smith" {
		t.Fatalf("Mention = %q", got)
	}
	if _, _, ok := ParseTeamsUser("U123"); ok {
		t.Fatal("a Slack id is not a Teams user")
	}
}
