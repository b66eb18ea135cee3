package policy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"
)

// Watch loads dir now and again whenever a file under it changes (checked
// every interval), calling onLoad with each new snapshot or the reason the
// set did not load. It returns when ctx ends. Polling, rather than file
// events, also sees ConfigMap volumes, whose files change by symlink swap.
func Watch(ctx context.Context, dir string, interval time.Duration, onLoad func(*Snapshot, error)) {
	last := ""
	check := func() {
		fp, err := Fingerprint(dir)
		if err != nil {
			if last != "error:"+err.Error() {
				last = "error:" + err.Error()
				onLoad(nil, err)
			}
			return
		}
		if fp == last {
			return
		}
		last = fp
		onLoad(LoadDir(dir))
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

// Fingerprint summarises the names, sizes and modification times of the
// policy files under dir: it changes when what LoadDir would load may have.
func Fingerprint(dir string) (string, error) {
	files, err := ListFiles(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", f, info.Size(), info.ModTime().UnixNano())
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
