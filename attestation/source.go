package attestation

import (
	"context"
	"sync"
	"time"

	"github.com/imagegate/imagegate/facts"
	"github.com/imagegate/imagegate/scan"
)

// Source is a facts.Source whose signature facts are verified live; scan
// facts come from another source (a file, later the scan store), if any.
type Source struct {
	verifier *Verifier
	scans    facts.Source
}

var _ facts.Source = (*Source)(nil)

// NewSource verifies with v and takes scan facts from scans (nil: none).
func NewSource(v *Verifier, scans facts.Source) *Source {
	return &Source{verifier: v, scans: scans}
}

// Facts verifies every image against the request's attestors, concurrently,
// within ctx's deadline.
func (s *Source) Facts(ctx context.Context, req facts.Request) ([]*facts.Image, error) {
	out := make([]*facts.Image, len(req.Images))
	if s.scans != nil {
		scanned, err := s.scans.Facts(ctx, req)
		if err != nil {
			return nil, err
		}
		for i, f := range scanned {
			out[i] = &facts.Image{Digest: f.Digest, Scan: f.Scan, Malicious: f.Malicious, MaliciousReason: f.MaliciousReason}
		}
	}
	for i := range out {
		if out[i] == nil {
			out[i] = &facts.Image{}
		}
	}
	if len(req.Attestors) == 0 && len(req.ScanAttestors) == 0 {
		return out, nil // no policy requires a signature here: no registry call
	}
	var wg sync.WaitGroup
	for i := range req.Images {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := s.verifier.Check(ctx, req.Images[i], req.Attestors, req.ScanAttestors)
			f := out[i]
			if r.Digest != "" {
				f.Digest = r.Digest
			}
			s.vulnScan(f, r)
			for _, a := range r.Attestors {
				switch a.Outcome {
				case Verified:
					f.Attestors = append(f.Attestors, a.Attestor)
				case Unverifiable:
					f.Unverifiable = append(f.Unverifiable, a.Attestor)
					fallthrough
				default:
					if f.AttestorErrors == nil {
						f.AttestorErrors = map[string]string{}
					}
					f.AttestorErrors[a.Attestor] = a.Reason
				}
			}
		}(i)
	}
	wg.Wait()
	return out, nil
}

// vulnScan takes a verified vulnerability attestation as the image's scan
// unless the scan store has a newer one, and notes why one was ignored.
func (s *Source) vulnScan(f *facts.Image, r Result) {
	if r.Vuln == nil {
		return
	}
	if r.Vuln.Predicate == nil {
		if r.Vuln.Reason != "no attestations found" {
			f.ScanNote = r.Vuln.Reason
		}
		return
	}
	scanned, err := scan.ParseTrivyFindings(r.Vuln.Predicate.Scanner.Result, time.Now())
	if err != nil {
		f.ScanNote = "vulnerability attestation by " + r.Vuln.Attestor + " ignored: " + err.Error()
		return
	}
	if t, err := time.Parse(time.RFC3339, r.Vuln.Predicate.Metadata.ScanFinishedOn); err == nil {
		scanned.ScannedAt = t
	}
	scanned.Source = "vuln attestation by " + r.Vuln.Attestor
	if f.Scan == nil || scanned.ScannedAt.After(f.Scan.ScannedAt) {
		f.Scan = scanned
	}
}
