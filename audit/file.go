package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FileSink writes events as JSON lines to a writer (stdout) or to a file it
// rotates by size: FILE is renamed FILE.<time>, a new FILE is started, and
// only the newest MaxBackups rotated files are kept.
type FileSink struct {
	path       string // "" when writing to w
	maxSize    int64
	maxBackups int
	w          io.Writer
	f          *os.File
	size       int64
	buf        []byte
	now        func() time.Time
}

var _ Sink = (*FileSink)(nil)

// NewWriterSink writes JSON lines to w (stdout).
func NewWriterSink(w io.Writer) *FileSink { return &FileSink{w: w, now: time.Now} }

// NewFileSink appends JSON lines to path, rotating when a write would take
// it past maxSize bytes (0: never) and keeping maxBackups rotated files (0:
// all).
func NewFileSink(path string, maxSize int64, maxBackups int) (*FileSink, error) {
	if maxSize < 0 || maxBackups < 0 {
		return nil, fmt.Errorf("audit log %s: max size and max backups must not be negative", path)
	}
	s := &FileSink{path: path, maxSize: maxSize, maxBackups: maxBackups, now: time.Now}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name is the sink's metric label.
func (s *FileSink) Name() string { return "file" }

// Write appends one line per event. A failed write (a full disk) loses this
// batch; the next batch tries again, reopening the file if needed.
func (s *FileSink) Write(events []*Event) error {
	s.buf = s.buf[:0]
	for _, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		s.buf = append(append(s.buf, b...), '\n')
	}
	if s.path == "" {
		_, err := s.w.Write(s.buf)
		return err
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	if s.maxSize > 0 && s.size > 0 && s.size+int64(len(s.buf)) > s.maxSize {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(s.buf)
	s.size += int64(n)
	if err != nil {
		// A partial line would corrupt the next one: start a fresh line.
		if n > 0 {
			if _, err2 := s.f.Write([]byte{'\n'}); err2 == nil {
				s.size++
			}
		}
		return fmt.Errorf("audit log %s: %w", s.path, err)
	}
	return nil
}

// Close closes the file.
func (s *FileSink) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

func (s *FileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	s.f, s.size = f, st.Size()
	return nil
}

func (s *FileSink) rotate() error {
	if err := s.f.Close(); err != nil {
		s.f = nil
		return fmt.Errorf("audit log %s: closing for rotation: %w", s.path, err)
	}
	s.f = nil
	backup := s.path + "." + s.now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(s.path, backup); err != nil {
		return fmt.Errorf("audit log %s: rotating: %w", s.path, err)
	}
	if err := s.open(); err != nil {
		return err
	}
	return s.prune()
}

// prune removes the oldest rotated files beyond maxBackups; their names sort
// by time.
func (s *FileSink) prune() error {
	if s.maxBackups == 0 {
		return nil
	}
	matches, err := filepath.Glob(s.path + ".*")
	if err != nil {
		return err
	}
	prefix := s.path + "."
	backups := slices.DeleteFunc(matches, func(m string) bool {
		_, err := time.Parse("20060102T150405.000000000Z", strings.TrimPrefix(m, prefix))
		return err != nil
	})
	slices.Sort(backups)
	var errs []error
	for len(backups) > s.maxBackups {
		errs = append(errs, os.Remove(backups[0]))
		backups = backups[1:]
	}
	return errors.Join(errs...)
}
