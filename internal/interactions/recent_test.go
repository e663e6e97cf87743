package interactions

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRecentEnvelopesAreRememberedUpToTheirLimit(t *testing.T) {
	r := newRecent(3)
	assert.True(t, r.add("E1"))
	assert.False(t, r.add("E1"), "a redelivered envelope")
	assert.True(t, r.add(""), "no id: never taken for a repeat")
	assert.True(t, r.add(""))
	for i := 2; i <= 4; i++ {
		assert.True(t, r.add(fmt.Sprint("E", i)))
	}
	assert.True(t, r.add("E1"), "forgotten after three newer ones")
	assert.False(t, r.add("E4"))
	assert.Len(t, r.ids, 3)
}
