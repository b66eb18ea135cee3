package bundle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/policy"
)

// maxStatusReason bounds the reason Status gives.
const maxStatusReason = 1024

// Watcher polls a Source for new digests and hands each verified, valid
// bundle's snapshot to its caller, and each refusal's reason.
type Watcher struct {
	src *Source

	mu      sync.Mutex
	serving string // digest of the last bundle handed over
	refused string // why the reference's current digest is not in force; "" when it is
}

// NewWatcher watches src.
func NewWatcher(src *Source) *Watcher { return &Watcher{src: src} }

// Watch loads the bundle now and whenever the reference names a new digest
// (checked every interval), calling onLoad with its snapshot or the reason
// it was refused. It returns when ctx ends.
//
// A digest whose content was refused (invalid, malformed, too large) is not
// read again: content under a digest cannot change. An unverified digest is
// checked again each time, so signing a pushed bundle later takes effect;
// a refusal is reported again only when its reason changes.
func (w *Watcher) Watch(ctx context.Context, interval time.Duration, onLoad func(*policy.Snapshot, error)) {
	// settled is the last digest decided for good (loaded, or refused for
	// its content: settledErr); reported the last refusal handed to onLoad.
	var settled, settledErr, reported string
	var last *policy.Snapshot // of settled, when it loaded
	check := func() {
		cctx, cancel := context.WithTimeout(ctx, w.src.o.timeout)
		defer cancel()
		d, err := w.src.Resolve(cctx)
		if err == nil && d.String() == settled {
			// Unchanged, but an error (a registry away, an unsigned digest
			// since re-tagged) may have been reported in between: the set
			// in force is again what the source holds, and onLoad hears so.
			if reported != settledErr && settledErr == "" {
				onLoad(last, nil)
			}
			reported = settledErr
			w.set("", settledErr)
			return
		}
		var b *Bundle
		if err == nil {
			b, err = w.src.Load(cctx, d)
		}
		if err == nil {
			settled, settledErr, reported, last = d.String(), "", "", b.Snapshot
			// Status changes after onLoad: what it reports is in force.
			onLoad(b.Snapshot, nil)
			w.set(d.DigestStr(), "")
			return
		}
		if ctx.Err() != nil {
			return
		}
		if IsContentRefusal(err) {
			settled, settledErr = d.String(), err.Error()
		}
		if err.Error() != reported {
			reported = err.Error()
			onLoad(nil, err)
		}
		w.set("", err.Error())
	}
	check()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}

func (w *Watcher) set(serving, refused string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if serving != "" {
		w.serving = serving
	}
	w.refused = refused
}

// Status is "" while the reference's current digest is the bundle in force,
// else why not, and what is served instead (for /readyz).
func (w *Watcher) Status() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.refused == "" {
		return ""
	}
	serving := "no bundle loaded yet"
	if w.serving != "" {
		serving = "serving " + w.src.ref.Context().String() + "@" + w.serving
	}
	reason := strings.ReplaceAll(w.refused, "\n", "; ")
	if len(reason) > maxStatusReason { // a set with many errors: the log has them all
		reason = strings.ToValidUTF8(reason[:maxStatusReason], "") + "…"
	}
	return fmt.Sprintf("%s%s not in force (%s): %s", Scheme, w.src.Ref(), serving, reason)
}

// IsContentRefusal reports whether err refuses what a digest holds (its
// signature aside): invalid policies, not a bundle, over the bounds.
func IsContentRefusal(err error) bool {
	var ie *InvalidError
	var me *MalformedError
	var le *LimitError
	return errors.As(err, &ie) || errors.As(err, &me) || errors.As(err, &le)
}

// Result classifies a load for metrics: ok, unverified, invalid (content
// refused) or error (the registry could not be read).
func Result(err error) string {
	var ue *UnverifiedError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ue):
		return "unverified"
	case IsContentRefusal(err):
		return "invalid"
	}
	return "error"
}
