package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

const key32 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 ASCII bytes

func TestDefaults(t *testing.T) {
	c, err := Load(env())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:7233", c.TemporalAddress)
	assert.Equal(t, "default", c.TemporalNamespace)
	assert.Equal(t, "http://127.0.0.1:8080", c.PublicURL)
	assert.Equal(t, "rebook-triage", c.TriageChannel)
	assert.Equal(t, 24, c.TriageSLAHours)
	c, err = Load(env(TriageSLAHours, "8"))
	require.NoError(t, err)
	assert.Equal(t, 8, c.TriageSLAHours)
}

func TestRequiredMissing(t *testing.T) {
	_, err := Load(env(PKBClientID, "abc"), PKBClientID, PKBClientSecret)
	require.Error(t, err)
	assert.Equal(t, "config: PKB_CLIENT_SECRET is not set", err.Error())
}

func TestMalformedValuesNameTheVariableNotTheValue(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{PKBBaseURL, "ftp://secret-host", "config: PKB_BASE_URL must be an http:// or https:// URL"},
		{DatabaseURL, "mysql://x", "config: DATABASE_URL must be a postgres:// URL"},
		{TemporalAddress, "localhost", "config: TEMPORAL_ADDRESS must be host:port"},
		{SlackBotToken, "xoxp-personal-token", "config: SLACK_BOT_TOKEN must start with xoxb-"},
		{SlackAppToken, "xoxb-not-an-app-token", "config: SLACK_APP_TOKEN must start with xapp-"},
		{TriageChannel, "triage team!", "config: REBOOK_TRIAGE_CHANNEL must be a Slack channel name or id, or teams:<channel id>"},
		{AdminChannel, "teams:General", "config: REBOOK_ADMIN_CHANNEL must be a Slack channel name or id, or teams:<channel id>"},
		{TeamsAppID, "00000000-0000-0000-0000-000000000001", "config: TEAMS_APP_ID needs TEAMS_APP_PASSWORD and TEAMS_TENANT_ID as well"},
		{TeamsServiceURL, "smba.trafficmanager.net/teams", "config: TEAMS_SERVICE_URL must be an http:// or https:// URL"},
		{TriageSLAHours, "-3", "config: REBOOK_TRIAGE_SLA_HOURS must be a whole number of hours from 1 to 8760"},
		{TriageSLAHours, "two days", "config: REBOOK_TRIAGE_SLA_HOURS must be a whole number of hours from 1 to 8760"},
		{EncryptionKey, "c2hvcnQ=", "config: REBOOK_ENCRYPTION_KEY must decode to 32 bytes, not 5 (make one with: openssl rand -base64 32)"},
		{WorkflowCache, "5", "config: REBOOK_WORKFLOW_CACHE must be a whole number of workflows from 10 to 1000000"},
		{OIDCIssuer, "login.example/tenant", "config: REBOOK_OIDC_ISSUER must be an http:// or https:// URL"},
		{LocalUsers, "dev:superuser:", "config: REBOOK_LOCAL_USERS user dev: role \"superuser\" is not staff, operator or admin"},
		{EncryptionKey, "not base64 at all!", "config: REBOOK_ENCRYPTION_KEY must be 32 bytes written as base64 or 64 hex digits (make one with: openssl rand -base64 32)"},
		{SlackDetail, "everything", "config: REBOOK_SLACK_DETAIL must be appointment or minimal"},
		{RetentionDays, "-5", "config: REBOOK_RETENTION_DAYS must be a whole number of days from 1 to 3650"},
		{RetentionDays, "ninety", "config: REBOOK_RETENTION_DAYS must be a whole number of days from 1 to 3650"},
		{OldEncryptionKeys, "an-old-key-without-a-current-one", "config: REBOOK_ENCRYPTION_OLD_KEYS is set without REBOOK_ENCRYPTION_KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(tc.name, tc.value))
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			var ce *Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.name, ce.Var)
			assert.False(t, strings.Contains(err.Error(), tc.value), "value leaked")
		})
	}
}

func TestOldEncryptionKeys(t *testing.T) {
	cur, a, b := strings.Repeat("A", 43)+"=", strings.Repeat("B", 43)+"=", strings.Repeat("c", 64)
	c, err := Load(env(EncryptionKey, cur, OldEncryptionKeys, a+", "+b))
	require.NoError(t, err)
	require.Len(t, c.OldEncryptionKeys, 2)
	assert.Len(t, c.OldEncryptionKeys[1], 32)
	assert.Equal(t, 90, c.RetentionDays, "the default retention")

	_, err = Load(env(EncryptionKey, cur, OldEncryptionKeys, a+",short"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "REBOOK_ENCRYPTION_OLD_KEYS key 2 must")
	assert.NotContains(t, err.Error(), a, "no key in the message")
}

func TestSignInSettings(t *testing.T) {
	_, err := Load(env(OIDCIssuer, "https://login.microsoftonline.com/t/v2.0"))
	assert.EqualError(t, err, "config: REBOOK_OIDC_CLIENT_ID and REBOOK_OIDC_CLIENT_SECRET must be set with REBOOK_OIDC_ISSUER")
	c, err := Load(env(OIDCIssuer, "https://login.microsoftonline.com/t/v2.0/", OIDCClientID, "id", OIDCClientSecret, "s",
		LocalUsers, "dev:operator,admin:;sam:staff:Cardiology"))
	require.NoError(t, err)
	assert.Equal(t, "https://login.microsoftonline.com/t/v2.0", c.OIDCIssuer)
	assert.Equal(t, "roles", c.OIDCRolesClaim)
	assert.Equal(t, "groups", c.OIDCTeamsClaim)
	require.Len(t, c.LocalUsers, 2)
	assert.Equal(t, []string{"Cardiology"}, c.LocalUsers[1].Teams)
}

func TestEncryptionKeyForms(t *testing.T) {
	for _, v := range []string{key32, strings.TrimRight(key32, "="), strings.Repeat("ab", 32)} {
		c, err := Load(env(EncryptionKey, v))
		require.NoError(t, err, v)
		assert.Len(t, c.EncryptionKey, 32)
	}
}

func TestValuesAreTrimmedAndNormalised(t *testing.T) {
	c, err := Load(env(PKBBaseURL, " https://sandbox.patientsknowbest.com/ ", TriageChannel, "#triage", PublicURL, "https://rebook.example.nhs.uk/"))
	require.NoError(t, err)
	assert.Equal(t, "https://sandbox.patientsknowbest.com", c.PKBBaseURL)
	assert.Equal(t, "triage", c.TriageChannel)
	assert.Equal(t, "https://rebook.example.nhs.uk", c.PublicURL)
}

func TestMLLPSecuritySettings(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "x.pem")
	require.NoError(t, os.WriteFile(pem, []byte("-"), 0o600))
	for _, tc := range []struct {
		kv   []string
		says string
	}{
		{[]string{MLLPTLSCert, pem}, MLLPTLSKey + " and " + MLLPTLSCert + " must be set together"},
		{[]string{MLLPClientCA, pem}, "client certificates are asked for over TLS"},
		{[]string{MLLPPlaintext, "yes"}, MLLPPlaintext + " must be 1"},
		{[]string{MLLPTLSCert, filepath.Join(dir, "missing.pem"), MLLPTLSKey, pem}, MLLPTLSCert},
	} {
		_, err := Load(env(tc.kv...))
		require.Error(t, err, "%v", tc.kv)
		assert.Contains(t, err.Error(), tc.says)
	}
	c, err := Load(env(MLLPTLSCert, pem, MLLPTLSKey, pem, MLLPClientCA, pem, MLLPPlaintext, "1"))
	require.NoError(t, err)
	assert.Equal(t, pem, c.MLLPClientCA)
	assert.True(t, c.MLLPPlaintext)
}

// Finding 1: the secrets the project ships open nothing outside demo mode,
// and the refusal names the variable, never its value.
func TestSecuritySecretsShippedForDemosAreRefused(t *testing.T) {
	for name, value := range Shipped {
		env := map[string]string{name: value}
		cfg, err := Load(func(k string) string { return env[k] })
		require.NoError(t, err)
		err = cfg.RefuseShipped()
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name)
		assert.Contains(t, err.Error(), Demo+"=1")
		assert.NotContains(t, err.Error(), value)

		env[Demo] = "1"
		cfg, err = Load(func(k string) string { return env[k] })
		require.NoError(t, err)
		assert.NoError(t, cfg.RefuseShipped(), "%s in demo mode", name)
	}
	env := map[string]string{SlackSigningSecret: "a-trust's-own-secret", SlackBotToken: "xoxb-trust", PKBClientSecret: "from-pkb"}
	cfg, err := Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.NoError(t, cfg.RefuseShipped())
	_, err = Load(func(k string) string { return map[string]string{Demo: "yes please"}[k] })
	assert.ErrorContains(t, err, Demo)
}
