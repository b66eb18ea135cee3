package webhook

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// A review names its user (userInfo), but anyone who can reach the webhook
// can write one. The API server can present a client certificate (its
// admission configuration's kubeconfig); a review that came with one that
// verifies against the configured CAs is authenticated, and only then is
// its user the API server's word. The handshake asks for a certificate but
// does not insist (tls.VerifyClientCertIfGiven), because kubelet probes of
// /healthz and /readyz on the same port present none; RequireClientCert
// insists per route.

// LoadClientCAs reads a PEM bundle of the CAs whose client certificates
// authenticate the API server.
func LoadClientCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// caller is who sent a request, as far as TLS says.
type caller struct {
	authenticated bool
	client        string // the verified certificate's subject
}

func callerOf(r *http.Request) caller {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return caller{}
	}
	return caller{authenticated: true, client: r.TLS.VerifiedChains[0][0].Subject.String()}
}

// errNoClientCert is the answer to a request without one where one is
// required.
var errNoClientCert = errors.New("a client certificate from the webhook's client CA is required (the API server's admission configuration must present one)")

// RequireClientCert answers 401 to requests that did not come with a
// verified client certificate, before reading their bodies; the others
// reach next. Wrap every route the API server calls with it when client
// certificates are required.
func RequireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !callerOf(r).authenticated {
			http.Error(w, errNoClientCert.Error(), http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
