package activities_test

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"golang.org/x/oauth2"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/store"
)

// afterAnswer runs then once PKB's token answer has been read in full: the
// moment a refresh has rotated the token and nothing is saved yet.
type afterAnswer struct{ then func() }

func (a afterAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = &hookedBody{ReadCloser: resp.Body, then: a.then}
	}
	return resp, err
}

type hookedBody struct {
	io.ReadCloser
	then func()
}

func (b *hookedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.then != nil {
		b.then()
		b.then = nil
	}
	return err
}

// Case 5: a refresh whose activity is cancelled (the worker stopping, a
// timeout) just after PKB rotated the token still keeps the new pair, so
// the next refresh works and no grant is lost.
func TestHazardRotatedTokenIsKeptWhenTheActivityIsCancelled(t *testing.T) {
	r := newRig(t)
	before, err := r.Store.Grant(context.Background(), "c")
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: afterAnswer{then: cancel}})
	_, _ = r.Set.Grant.RefreshGrant(ctx, "c")
	require.Error(t, ctx.Err(), "the activity was cancelled after PKB answered")

	after, err := r.Store.Grant(context.Background(), "c")
	require.NoError(t, err)
	assert.NotEqual(t, before.RefreshToken, after.RefreshToken, "the rotated pair was saved")
	res, err := r.Set.Grant.RefreshGrant(context.Background(), "c")
	require.NoError(t, err)
	assert.False(t, res.Refused, "the next refresh presents a live token")
}

// Case 5: a refusal of the token a refresh read never wipes the grant a
// clinician stored meanwhile.
func TestHazardRefusalNeverWipesANewerGrant(t *testing.T) {
	r := newRig(t)
	require.Equal(t, 1, r.Sim.RevokeGrants())
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: afterAnswer{then: func() {
		require.NoError(t, pkbauth.AutoGrant(context.Background(), r.Set.Grant.OAuth, r.Store))
	}}})
	res, err := r.Set.Grant.RefreshGrant(ctx, "c")
	require.NoError(t, err)
	assert.True(t, res.Superseded)
	assert.False(t, res.Refused)
	g, err := r.Store.Grant(context.Background(), "c")
	require.NoError(t, err)
	assert.Equal(t, store.GrantHealthy, g.Status, "the new grant stands")
	assert.NotEmpty(t, g.AccessToken)
	res, err = r.Set.Grant.RefreshGrant(context.Background(), "c")
	require.NoError(t, err)
	assert.False(t, res.Refused, "and it refreshes")
}

type registered map[string]bool

func (r registered) RegisterActivityWithOptions(a interface{}, _ activity.RegisterOptions) {
	name := runtime.FuncForPC(reflect.ValueOf(a).Pointer()).Name()
	r[strings.TrimSuffix(name[strings.LastIndex(name, ".")+1:], "-fm")] = true
}

// Every activity method a workflow can reference is registered: one that
// is not fails only when a workflow first calls it, in production.
func TestEveryActivityMethodIsRegistered(t *testing.T) {
	got := registered{}
	activities.Register(got, activities.Set{})
	ctxType := reflect.TypeFor[context.Context]()
	set := reflect.TypeFor[activities.Set]()
	for i := range set.NumField() {
		typ := set.Field(i).Type
		for m := range typ.NumMethod() {
			method := typ.Method(m)
			if method.Type.NumIn() > 1 && method.Type.In(1) == ctxType {
				assert.True(t, got[method.Name], "%s.%s is not registered", typ.Elem().Name(), method.Name)
			}
		}
	}
}
