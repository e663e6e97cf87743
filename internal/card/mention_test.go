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
