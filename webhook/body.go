package webhook

import "io"

// readAll is io.ReadAll starting from a buffer of the size the request
// announced (Content-Length, when known): io.ReadAll starts at 512 bytes and
// grows by copying, about ten times for a pod of a few kilobytes.
func readAll(r io.Reader, size int64) ([]byte, error) {
	b := make([]byte, 0, max(size+1, 512)) // +1: room to see EOF without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}
