package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/policy"
	"github.com/imagegate/imagegate/workload"
	bolt "go.etcd.io/bbolt"
)

// The store is a bbolt file (docs/audit.md). Event ids are time-ordered
// (nanoseconds, then a sequence), so key order is time order:
//
//	events                 id → event JSON
//	index/ns\x00NS         id → ""   events in namespace NS
//	index/act\x00A         id → ""   events with action A
//	index/na\x00NS\x00A    id → ""   both, so the common pair needs no intersection
//	index/img\x00REPO      id → ""   events with an image of repository REPO
//	index/type\x00api      id → ""   management API calls (admissions have no type index)
//	index/type\x00runtime  id → ""   runtime events (also in the ns, act and img indexes)
//	index/pr\x00P          id → ""   API calls by principal P
//	index/apiact\x00A      id → ""   API calls of action A (imagegate:CreateOpaStrategyNew)
//
// A query walks its index buckets from the newest key down, intersecting
// them by seeking (leapfrog), so it reads about as many keys as it returns.
var (
	bucketEvents = []byte("events")
	bucketIndex  = []byte("index")
)

const (
	ixNamespace = "ns\x00"
	ixAction    = "act\x00"
	ixNsAction  = "na\x00"
	ixImage     = "img\x00"
	ixTypeAPI   = "type\x00api"
	ixRuntime   = "type\x00runtime"
	ixPrincipal = "pr\x00"
	ixAPIAction = "apiact\x00"
)

// lockTimeout bounds waiting for another process's transaction.
const lockTimeout = 10 * time.Second

// Store is the local audit store at a path. It opens the file for each
// operation, so that imagegate events can read it while serve writes.
type Store struct {
	path string
	mu   sync.Mutex // one open at a time in this process: bbolt locks the file
}

var _ Sink = (*Store)(nil)

// OpenStore checks that path is (or can become) a store.
func OpenStore(path string) (*Store, error) {
	s := &Store{path: path}
	return s, s.with(false, func(tx *bolt.Tx) error {
		_, err1 := tx.CreateBucketIfNotExists(bucketEvents)
		_, err2 := tx.CreateBucketIfNotExists(bucketIndex)
		return errors.Join(err1, err2)
	})
}

// ReadStore opens an existing store for queries only.
func ReadStore(path string) *Store { return &Store{path: path} }

// Name is the sink's metric label.
func (s *Store) Name() string { return "store" }

func (s *Store) with(readOnly bool, fn func(*bolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly})
	if err != nil {
		return fmt.Errorf("audit store %s: %w", s.path, err)
	}
	defer db.Close()
	if readOnly {
		err = db.View(fn)
	} else {
		err = db.Update(fn)
	}
	if err != nil {
		return fmt.Errorf("audit store %s: %w", s.path, err)
	}
	return nil
}

// Write stores a batch of events in one transaction.
func (s *Store) Write(events []*Event) error {
	return s.with(false, func(tx *bolt.Tx) error {
		evs, err1 := tx.CreateBucketIfNotExists(bucketEvents)
		ix, err2 := tx.CreateBucketIfNotExists(bucketIndex)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		for _, ev := range events {
			id, err := hex.DecodeString(ev.ID)
			if err != nil || len(id) != 16 {
				return fmt.Errorf("event id %q is not 16 hex bytes", ev.ID)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if err := evs.Put(id, b); err != nil {
				return err
			}
			for _, name := range indexNames(ev) {
				bk, err := ix.CreateBucketIfNotExists([]byte(name))
				if err != nil {
					return err
				}
				if err := bk.Put(id, nil); err != nil {
					return err
				}
			}
		}
		return addStats(tx, events, 1)
	})
}

// indexNames are the index buckets an event belongs to.
func indexNames(ev *Event) []string {
	if ev.IsAPI() {
		names := []string{ixTypeAPI}
		if ev.API != nil && ev.API.Principal != "" {
			names = append(names, ixPrincipal+ev.API.Principal)
		}
		if ev.API != nil && ev.API.Action != "" {
			names = append(names, ixAPIAction+ev.API.Action)
		}
		return names
	}
	names := []string{ixNamespace + ev.Namespace}
	if ev.Type == TypeRuntime {
		names = append(names, ixRuntime)
	}
	for _, a := range ev.Actions {
		names = append(names, ixAction+a, ixNsAction+ev.Namespace+"\x00"+a)
	}
	seen := map[string]bool{}
	for _, img := range ev.Images {
		for _, repo := range repositories(img.Image) {
			if !seen[repo] {
				seen[repo] = true
				names = append(names, ixImage+repo)
			}
		}
	}
	return names
}

// repositories are the forms an image's repository is found by: as written
// (without tag or digest) and canonical.
func repositories(ref string) []string {
	written := ref
	if at := strings.IndexByte(written, '@'); at >= 0 {
		written = written[:at]
	}
	if colon := strings.LastIndexByte(written, ':'); colon > strings.LastIndexByte(written, '/') {
		written = written[:colon]
	}
	out := []string{written}
	if img := workload.ParseImage(ref); img.Err == nil && img.Repository != written {
		out = append(out, img.Repository)
	}
	return out
}

// Query returns one page of the events q selects, newest first.
func (s *Store) Query(q Query) (*Page, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	page := &Page{Events: []*Event{}}
	err := s.with(true, func(tx *bolt.Tx) error {
		evs := tx.Bucket(bucketEvents)
		ix := tx.Bucket(bucketIndex)
		if evs == nil || ix == nil {
			return nil
		}
		streams, err := plan(q, evs, ix)
		if err != nil || streams == nil {
			return err
		}
		upper := bytes.Repeat([]byte{0xff}, 16)
		if !q.Until.IsZero() {
			binary.BigEndian.PutUint64(upper[:8], uint64(q.Until.UnixNano()))
		}
		if q.PageToken != "" {
			tok, _ := hex.DecodeString(q.PageToken)
			if !decrement(tok) {
				return nil
			}
			if bytes.Compare(tok, upper) < 0 {
				upper = tok
			}
		}
		var lower []byte
		if !q.Since.IsZero() {
			lower = make([]byte, 16)
			binary.BigEndian.PutUint64(lower[:8], uint64(max(q.Since.UnixNano(), 0)))
		}
		k := upper
		for {
			k = intersect(streams, k)
			if k == nil || (lower != nil && bytes.Compare(k, lower) < 0) {
				return nil
			}
			var ev Event
			if err := json.Unmarshal(evs.Get(k), &ev); err != nil {
				return fmt.Errorf("event %x: %w", k, err)
			}
			// Clusters are not indexed (a store usually holds one): their
			// filter reads the events the indexes leave. Runtime events
			// share the admission indexes.
			if (q.ClusterID == "" || ev.ClusterID == q.ClusterID) && (q.Type != TypeAdmission || ev.Type != TypeRuntime) {
				if len(page.Events) == limit {
					// One more matches: there is a next page.
					page.NextPageToken = page.Events[len(page.Events)-1].ID
					return nil
				}
				page.Events = append(page.Events, &ev)
			}
			k = append([]byte(nil), k...)
			if !decrement(k) {
				return nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// plan picks the key streams whose intersection is the answer; nil streams
// mean nothing can match.
func plan(q Query, evs, ix *bolt.Bucket) ([]stream, error) {
	var streams []stream
	buckets := func(names []string) stream {
		var u union
		for _, n := range names {
			if b := ix.Bucket([]byte(n)); b != nil {
				u = append(u, &desc{c: b.Cursor()})
			}
		}
		return u
	}
	if q.Type == TypeAPI {
		return planAPI(q, ix, buckets), nil
	}
	switch {
	case q.Namespace != "" && len(q.Actions) > 0:
		var names []string
		for _, a := range q.Actions {
			names = append(names, ixNsAction+q.Namespace+"\x00"+a)
		}
		streams = append(streams, buckets(names))
	case q.Namespace != "":
		streams = append(streams, buckets([]string{ixNamespace + q.Namespace}))
	case len(q.Actions) > 0:
		var names []string
		for _, a := range q.Actions {
			names = append(names, ixAction+a)
		}
		streams = append(streams, buckets(names))
	}
	if q.Type == TypeRuntime {
		streams = append(streams, buckets([]string{ixRuntime}))
	}
	if q.Image != "" && q.Image != "*" {
		g, err := policy.CompileGlob(q.Image)
		if err != nil {
			return nil, &FilterError{"image", q.Image, "a glob of * and ?"}
		}
		var names []string
		c := ix.Cursor()
		prefix := []byte(ixImage)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if g.Match(string(k[len(prefix):])) {
				names = append(names, string(k))
			}
		}
		streams = append(streams, buckets(names))
	}
	switch {
	case len(streams) == 0 && q.Type == TypeAdmission:
		// Every admission is in exactly one namespace bucket (stores
		// written before API events too), so their union is all admissions.
		streams = append(streams, buckets(prefixed(ix, ixNamespace)))
	case len(streams) == 0:
		streams = append(streams, union{&desc{c: evs.Cursor()}})
	}
	for _, s := range streams {
		if len(s.(union)) == 0 {
			return nil, nil
		}
	}
	return streams, nil
}

// planAPI picks the streams of an API call query: by principal and/or
// action, or all API calls.
func planAPI(q Query, ix *bolt.Bucket, buckets func([]string) stream) []stream {
	var streams []stream
	if q.Principal != "" {
		streams = append(streams, buckets([]string{ixPrincipal + q.Principal}))
	}
	if len(q.APIActions) > 0 {
		var names []string
		for _, a := range q.APIActions {
			names = append(names, ixAPIAction+a)
		}
		streams = append(streams, buckets(names))
	}
	if len(streams) == 0 {
		streams = append(streams, buckets([]string{ixTypeAPI}))
	}
	for _, s := range streams {
		if len(s.(union)) == 0 {
			return nil
		}
	}
	return streams
}

// prefixed lists the index buckets whose names start with prefix.
func prefixed(ix *bolt.Bucket, prefix string) []string {
	var names []string
	c := ix.Cursor()
	p := []byte(prefix)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		names = append(names, string(k))
	}
	return names
}

// stream yields keys in descending order: seekLE returns the greatest key
// ≤ k, or nil. Callers only ever pass decreasing k.
type stream interface {
	seekLE(k []byte) []byte
}

type desc struct {
	c   *bolt.Cursor
	cur []byte
	ok  bool
}

func (d *desc) seekLE(k []byte) []byte {
	if d.ok && (d.cur == nil || bytes.Compare(d.cur, k) <= 0) {
		return d.cur // still the answer: k only decreases
	}
	d.ok = true
	key, _ := d.c.Seek(k)
	switch {
	case key == nil:
		key, _ = d.c.Last()
	case !bytes.Equal(key, k):
		key, _ = d.c.Prev()
	}
	for key != nil && len(key) != 16 { // not an event id (cannot happen in index buckets)
		key, _ = d.c.Prev()
	}
	d.cur = key
	return key
}

// union merges streams: the greatest of their answers.
type union []*desc

func (u union) seekLE(k []byte) []byte {
	var best []byte
	for _, d := range u {
		if x := d.seekLE(k); x != nil && (best == nil || bytes.Compare(x, best) > 0) {
			best = x
		}
	}
	return best
}

// intersect returns the greatest key ≤ k present in every stream.
func intersect(streams []stream, k []byte) []byte {
	for {
		agreed := true
		for _, s := range streams {
			x := s.seekLE(k)
			if x == nil {
				return nil
			}
			if !bytes.Equal(x, k) {
				k, agreed = x, false
			}
		}
		if agreed {
			return k
		}
	}
}

// decrement turns k into the key just below it; false when k is zero.
func decrement(k []byte) bool {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] > 0 {
			k[i]--
			return true
		}
		k[i] = 0xff
	}
	return false
}
