package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imagegate/imagegate/attestation"
	"github.com/imagegate/imagegate/workload"
)

// DigestResolver tells the digest an image's tag names now, never from a
// cache; attestation.Verifier is the production one.
type DigestResolver interface {
	Resolve(ctx context.Context, creds attestation.Credentials, img workload.Image) (string, error)
}

var _ DigestResolver = (*attestation.Verifier)(nil)

// AnnotationPinned is the audit annotation listing the images a Pod was
// pinned to, one per line (the API server prefixes the webhook's name:
// mutate.imagegate.dev/pinned).
const AnnotationPinned = "pinned"

// Mutator serves POST /mutate, the mutating webhook that pins a Pod's
// images to the digests their tags name at admission: the kubelet then
// pulls what the validating webhook, which runs after every mutating one,
// verified, even when the tag moves in between. It only ever admits: a pod
// it cannot pin is left by tag for the validating webhook to decide.
type Mutator struct {
	resolver DigestResolver
	opts     options
	slots    chan struct{}
	metrics  *mutationMetrics
}

var _ http.Handler = (*Mutator)(nil)

// NewMutator returns a Mutator resolving with r; with a nil r pinning is
// off and every request is admitted unchanged (the webhook configuration
// may still call /mutate).
func NewMutator(r DigestResolver, opts ...Option) (*Mutator, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Mutator{resolver: r, opts: o, slots: make(chan struct{}, o.maxInFlight), metrics: newMutationMetrics(o.registerer)}, nil
}

func (m *Mutator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m.metrics.inFlight.Inc()
	defer m.metrics.inFlight.Dec()
	rv, code, msg := readReview(w, r, m.opts.maxBodyBytes, nil)
	if rv == nil {
		m.observe("error", start)
		m.opts.logger.Warn("bad admission request", "path", r.URL.Path, "status", code, "error", msg)
		http.Error(w, msg, code)
		return
	}
	b, tooShort := budget(r, m.opts.defaultTimeout)
	if tooShort != nil {
		// No time to resolve: the pod stays by tag and the validating
		// webhook decides (and fails closed) on its own.
		m.observe("error", start)
		m.opts.logger.Warn("not pinning digests", "uid", rv.Request.UID, "error", tooShort.Error())
		writeAnswer(w, &response{UID: rv.Request.UID, Allowed: true})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), b)
	defer cancel()
	resp, result := m.answer(ctx, rv.Request)
	m.observe(result, start)
	writeAnswer(w, resp)
}

func (m *Mutator) observe(result string, start time.Time) {
	m.metrics.requests.WithLabelValues(result).Inc()
	m.metrics.latency.WithLabelValues(result).Observe(time.Since(start).Seconds())
}

// answer pins one request's images; it never panics, never denies and
// always keeps the UID.
func (m *Mutator) answer(ctx context.Context, req *request) (resp *response, result string) {
	unchanged := &response{UID: req.UID, Allowed: true}
	defer func() {
		if p := recover(); p != nil {
			m.opts.logger.Error("panic while pinning digests; the pod stays by tag", "uid", req.UID, "panic", fmt.Sprint(p))
			resp, result = unchanged, "error"
		}
	}()
	if m.resolver == nil || (m.opts.exempt[req.Namespace] && req.Namespace != "") {
		return unchanged, "skipped"
	}
	pod, targets, skip, err := pinTargets(req)
	switch {
	case err != nil:
		// The validating webhook denies what does not decode.
		m.opts.logger.Warn("pod not pinned", "uid", req.UID, "namespace", req.Namespace, "name", req.Name, "error", err.Error())
		return unchanged, "error"
	case skip != "":
		return unchanged, "skipped"
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Metadata.Namespace
	}
	if ns == "" {
		ns = workload.DefaultNamespace
	}
	if m.opts.exempt[ns] {
		return unchanged, "skipped"
	}
	select {
	case m.slots <- struct{}{}:
		defer func() { <-m.slots }()
	case <-ctx.Done():
		m.opts.logger.Warn("pod not pinned: too many requests in flight", "uid", req.UID, "namespace", ns, "name", req.Name)
		return unchanged, "error"
	}
	digests := m.resolve(ctx, m.credentials(ns, pod), targets)
	var ops []patchOp
	var lines []string
	failed := false
	for _, t := range targets {
		d := digests[t.img.Ref]
		if d.err != nil {
			failed = true
			m.opts.logger.Warn("image not pinned; the validating webhook decides on the tag", "uid", req.UID, "namespace", ns, "name", req.Name,
				"container", t.img.Container, "image", t.img.Ref, "error", d.err.Error())
			continue
		}
		ref := pinned(t.img, d.digest)
		ops = append(ops, patchOp{Op: "replace", Path: t.path, Value: ref})
		lines = append(lines, ref)
	}
	if len(ops) == 0 {
		return unchanged, "error"
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return unchanged, "error"
	}
	m.opts.logger.Debug("images pinned", "uid", req.UID, "namespace", ns, "name", req.Name, "images", lines)
	result = "patched"
	if failed {
		result = "error" // counted as such: some image stays by tag
	}
	return &response{UID: req.UID, Allowed: true, PatchType: "JSONPatch", Patch: patch,
		AuditAnnotations: map[string]string{AnnotationPinned: strings.Join(lines, "\n")}}, result
}

type resolution struct {
	digest string
	err    error
}

// resolve resolves each distinct image of targets, concurrently.
func (m *Mutator) resolve(ctx context.Context, creds attestation.Credentials, targets []pinTarget) map[string]resolution {
	var imgs []workload.Image
	seen := map[string]bool{}
	for _, t := range targets {
		if !seen[t.img.Ref] {
			seen[t.img.Ref] = true
			imgs = append(imgs, t.img)
		}
	}
	got := make([]resolution, len(imgs))
	var wg sync.WaitGroup
	for i, img := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A panic here would end the process: answer's recover is on
			// another goroutine.
			defer func() {
				if p := recover(); p != nil {
					m.metrics.resolutions.WithLabelValues("error").Inc()
					got[i] = resolution{err: fmt.Errorf("internal error: %v", p)}
				}
			}()
			d, err := m.resolver.Resolve(ctx, creds, img)
			if err == nil && d == "" {
				err = fmt.Errorf("no digest for %s", img.Ref)
			}
			res := "ok"
			if err != nil {
				res = "error"
			}
			m.metrics.resolutions.WithLabelValues(res).Inc()
			got[i] = resolution{digest: d, err: err}
		}()
	}
	wg.Wait()
	out := make(map[string]resolution, len(imgs))
	for i, img := range imgs {
		out[img.Ref] = got[i]
	}
	return out
}

// credentials are the pod's registry credentials, when pull secrets are known.
func (m *Mutator) credentials(ns string, pod *pinPod) attestation.Credentials {
	if m.opts.keychains == nil {
		return attestation.Credentials{}
	}
	secrets := pod.pullSecrets()
	kc := m.opts.keychains.Keychain(ns, pod.Spec.ServiceAccountName, secrets)
	if kc == nil {
		return attestation.Credentials{}
	}
	return attestation.Credentials{Keychain: kc, ID: ns + "/" + pod.Spec.ServiceAccountName + "/" + strings.Join(secrets, ",")}
}

// MutatePath is where the Mutator is served, beside /validate.
const MutatePath = "/mutate"
