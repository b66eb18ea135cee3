package audit

import (
	"encoding/hex"
	"errors"
)

// ErrNoEvent is an event id no stored event has.
var ErrNoEvent = errors.New("no such event")

// Get finds one event by id through any Querier: the page token is the
// id just above it, so the first event of that page is the one asked for
// when it exists.
func Get(store Querier, id string) (*Event, error) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return nil, &FilterError{"id", id, "an event id (32 hex digits)"}
	}
	if !increment(b) {
		return nil, ErrNoEvent
	}
	page, err := store.Query(Query{PageToken: hex.EncodeToString(b), Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(page.Events) == 0 || page.Events[0].ID != id {
		return nil, ErrNoEvent
	}
	return page.Events[0], nil
}

// increment turns k into the key just above it; false when k is all ones.
func increment(k []byte) bool {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] < 0xff {
			k[i]++
			return true
		}
		k[i] = 0
	}
	return false
}
