package api

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/imagegate/imagegate/policy"
	"sigs.k8s.io/yaml"
)

// Store holds the policy objects the webhook enforces. Apply validates the
// complete resulting set before anything is written; a refused change
// leaves everything as it was. DirStore implements it over a policy
// directory, kube.Store over a cluster's custom resources.
type Store interface {
	Snapshot() (*policy.Snapshot, error)
	Apply(c Change) error
}

// Change puts one object (create or replace) or deletes one.
type Change struct {
	Put    policy.Object
	Delete *Ref
}

// Ref names an object.
type Ref struct{ Kind, Name string }

func refOf(o policy.Object) Ref {
	switch v := o.(type) {
	case *policy.Attestor:
		return Ref{policy.KindAttestor, v.Metadata.Name}
	case *policy.BinarySecurityPolicy:
		return Ref{policy.KindBinarySecurityPolicy, v.Metadata.Name}
	case *policy.OpaStrategy:
		return Ref{policy.KindOpaStrategy, v.Metadata.Name}
	}
	return Ref{}
}

// InvalidError is a change whose resulting set does not validate.
type InvalidError struct {
	Target Ref
	Errs   policy.Errors
}

func (e *InvalidError) Error() string { return e.Errs.Error() }

// ConflictError is a write that lost a race: the object changed, appeared
// or disappeared between the read the change was based on and the write.
// Nothing was written; the caller may read again and retry.
type ConflictError struct {
	Target Ref
	Err    error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %s was changed by someone else meanwhile; nothing was written, read it again and retry: %v", e.Target.Kind, e.Target.Name, e.Err)
}

func (e *ConflictError) Unwrap() error { return e.Err }

// SharedFileError refuses to rewrite a file that holds other objects too:
// the API would lose their formatting and comments.
type SharedFileError struct {
	Target Ref
	File   string
}

func (e *SharedFileError) Error() string {
	return fmt.Sprintf("%s %s is defined in %s together with other objects; edit that file instead", e.Target.Kind, e.Target.Name, e.File)
}

// FileTakenError refuses to create an object whose file already exists
// holding something else: writing it would replace that.
type FileTakenError struct {
	Target Ref
	File   string
}

func (e *FileTakenError) Error() string {
	return fmt.Sprintf("%s %s would be written to %s, which already exists and holds something else; nothing was written", e.Target.Kind, e.Target.Name, filepath.Base(e.File))
}

// DirStore is a Store over the policy directory `serve --policies` watches.
// Objects created through the API get a file each (<kind>-<name>.yaml,
// the name escaped so that names and files correspond one to one; see
// fileName), written to a hidden temporary file and renamed, so the watcher never sees
// a partial file.
type DirStore struct {
	Dir string
	// Check, when set, is run on the validated resulting set before
	// anything is written (serve compiles the Rego engine with it, so the
	// API never writes a set the webhook would refuse).
	Check func(*policy.Snapshot) error
	mu    sync.Mutex
	// The last snapshot and the directory listing (names, sizes, mtimes)
	// it was loaded from: reads re-parse only when a file changed.
	cached    *policy.Snapshot
	cachedSig string
}

var _ Store = (*DirStore)(nil)

type located struct {
	obj  policy.Object
	file string
}

func (s *DirStore) load() ([]located, map[string]int, error) {
	files, err := policy.ListFiles(s.Dir)
	if err != nil {
		return nil, nil, err
	}
	var out []located
	perFile := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		objs, err := policy.Parse(f, data)
		if err != nil {
			return nil, nil, fmt.Errorf("policy directory does not load: %w", err)
		}
		for _, o := range objs {
			out = append(out, located{o, f})
		}
		perFile[f] = len(objs)
	}
	return out, perFile, nil
}

// Snapshot loads the directory as the webhook does.
func (s *DirStore) Snapshot() (*policy.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sig, err := policy.Fingerprint(s.Dir)
	if err != nil {
		return nil, err
	}
	if s.cached != nil && sig == s.cachedSig {
		return s.cached, nil
	}
	snap, err := policy.LoadDir(s.Dir)
	if err != nil {
		return nil, err
	}
	s.cached, s.cachedSig = snap, sig
	return snap, nil
}

// Apply validates the directory's objects with the change applied and then
// writes or removes one file.
func (s *DirStore) Apply(c Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cached = nil // whatever happens, the next read looks at the files
	all, perFile, err := s.load()
	if err != nil {
		return err
	}
	target := Ref{}
	if c.Put != nil {
		target = refOf(c.Put)
	} else if c.Delete != nil {
		target = *c.Delete
	}
	var next []policy.Object
	file := ""
	for _, l := range all {
		if refOf(l.obj) == target {
			file = l.file
			continue
		}
		next = append(next, l.obj)
	}
	if c.Put != nil {
		next = append(next, c.Put)
	}
	if file != "" && perFile[file] > 1 {
		return &SharedFileError{Target: target, File: file}
	}
	snap, err := policy.NewSnapshot(next...)
	if err != nil {
		var errs policy.Errors
		if errors.As(err, &errs) {
			return &InvalidError{Target: target, Errs: errs}
		}
		return err
	}
	if s.Check != nil {
		if err := s.Check(snap); err != nil {
			return fmt.Errorf("the resulting policy set does not compile: %w", err)
		}
	}
	if c.Put == nil {
		if file == "" {
			return nil
		}
		return os.Remove(file)
	}
	if file == "" {
		// A new object: its file must not exist. If it does, it holds
		// another object (or something that is not one), which a write
		// would silently replace.
		file = filepath.Join(s.Dir, fileName(target))
		if _, err := os.Lstat(file); err == nil {
			return &FileTakenError{Target: target, File: file}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	data, err := yaml.Marshal(c.Put)
	if err != nil {
		return err
	}
	return writeAtomic(file, data, 0o644)
}

// writeAtomic writes a hidden temporary file in the same directory (the
// watcher skips hidden files), syncs it and renames it over path.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".imagegate-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), perm); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
