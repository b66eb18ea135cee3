package webhook

import (
	"net/http"
	"time"
)

// Limits bound what one client can hold on a listener. The API server gives
// up on a webhook after its timeout (at most MaxTimeout), so a request whose
// headers or body are still arriving after that can never be answered in
// time: the read deadlines follow from it, and a trickling client costs a
// goroutine for at most that long instead of forever.
type Limits struct {
	ReadHeaderTimeout time.Duration // TLS handshake and headers
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration // from the end of the headers to the end of the answer
	IdleTimeout       time.Duration // a kept-alive connection without requests
	MaxHeaderBytes    int
	// HTTP/2, per connection: streams handled at once (Go queues a few
	// more and drops connections that open and reset streams faster than
	// that, its rapid-reset defence) and the largest frame read.
	MaxConcurrentStreams int
	MaxReadFrameSize     int
}

// DefaultLimits are derived from MaxTimeout; zero fields of a Server's
// Limits take these.
func DefaultLimits() Limits {
	return Limits{
		// A handshake and an AdmissionReview's headers take a round trip or
		// two; a sixth of the largest deadline is generous.
		ReadHeaderTimeout: MaxTimeout / 6,
		ReadTimeout:       MaxTimeout,
		// The decision ends before the deadline; the margin is for writing.
		WriteTimeout: MaxTimeout + 5*time.Second,
		// Longer than the API server keeps an idle connection (90 s, Go's
		// default), so it closes first: a server closing a kept-alive
		// HTTP/1.1 connection races the client's next request on it, and
		// the API server does not retry a POST that met a closed connection.
		IdleTimeout: 4 * MaxTimeout,
		// An AdmissionReview's headers are a few hundred bytes; bearer
		// tokens (scans, events) a few kilobytes. Go's default is 1 MiB.
		MaxHeaderBytes: 64 << 10,
		// Beyond --max-in-flight decisions requests only wait; 100 streams
		// per connection (the HTTP/2 recommended minimum) and more
		// connections serve an API server's load.
		MaxConcurrentStreams: 100,
		// Bodies are at most a few MiB; 64 KiB frames bound the buffer a
		// connection may make the server hold (Go's default is 1 MiB).
		MaxReadFrameSize: 64 << 10,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	orDefault(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	orDefault(&l.ReadTimeout, d.ReadTimeout)
	orDefault(&l.WriteTimeout, d.WriteTimeout)
	orDefault(&l.IdleTimeout, d.IdleTimeout)
	orDefault(&l.MaxHeaderBytes, d.MaxHeaderBytes)
	orDefault(&l.MaxConcurrentStreams, d.MaxConcurrentStreams)
	orDefault(&l.MaxReadFrameSize, d.MaxReadFrameSize)
	return l
}

func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Apply sets the limits on srv, HTTP/2 included (other listeners of serve
// use them too).
func (l Limits) Apply(srv *http.Server) {
	srv.ReadHeaderTimeout = l.ReadHeaderTimeout
	srv.ReadTimeout = l.ReadTimeout
	srv.WriteTimeout = l.WriteTimeout
	srv.IdleTimeout = l.IdleTimeout
	srv.MaxHeaderBytes = l.MaxHeaderBytes
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: l.MaxConcurrentStreams, MaxReadFrameSize: l.MaxReadFrameSize}
}
