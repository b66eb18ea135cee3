package workload

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Stdin is the argument that reads a manifest from standard input, and the
// name it has in results and errors.
const (
	Stdin     = "-"
	StdinName = "<stdin>"
)

// ReadManifests decodes, strictly, every workload of the given paths, in
// order: a file, Stdin, or a directory, read recursively for .yaml, .yml and
// .json files (hidden ones skipped, sorted), of which those without a
// workload are skipped. Nothing at all to check is an error.
func ReadManifests(paths []string, stdin io.Reader) ([]Located, error) {
	var out []Located
	for _, p := range paths {
		if p == Stdin {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, &FieldError{File: StdinName, Msg: err.Error()}
			}
			objs, err := decodeManifest(StdinName, data, false)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, &FieldError{File: p, Msg: errText(err)}
		}
		files, inDir := []string{p}, false
		if info.IsDir() {
			if files, err = manifestFiles(p); err != nil {
				return nil, &FieldError{File: p, Msg: errText(err)}
			}
			if len(files) == 0 {
				return nil, &FieldError{File: p, Msg: "no .yaml, .yml or .json file in this directory"}
			}
			inDir = true
		}
		var found int
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, &FieldError{File: f, Msg: errText(err)}
			}
			objs, err := decodeManifest(f, data, inDir)
			if err != nil {
				return nil, err
			}
			found += len(objs)
			out = append(out, objs...)
		}
		if found == 0 {
			return nil, &FieldError{File: p, Msg: fmt.Sprintf("no workload to check in this directory (expected one of %s)", strings.Join(Kinds, ", "))}
		}
	}
	return out, nil
}

func manifestFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, path)
			}
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// errText drops the path an *fs.PathError repeats: the FieldError names it.
func errText(err error) string {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// ContainersPath is where kind's containers are written, for messages about
// a workload without any.
func ContainersPath(kind string) string {
	switch kind {
	case "Pod":
		return "spec.containers"
	case "CronJob":
		return "spec.jobTemplate.spec.template.spec.containers"
	}
	return "spec.template.spec.containers"
}
