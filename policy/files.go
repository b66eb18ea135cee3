package policy

import "os"

// File is one policy file held in memory, such as a layer of a policy
// bundle: Name stands in errors where a path on disk would.
type File struct {
	Name string
	Data []byte
}

// LoadFiles loads files as LoadDir loads the files of a directory: every
// document of every file, validated one by one and as a set.
func LoadFiles(files []File) (*Snapshot, error) {
	var all []decoded
	var errs Errors
	for _, f := range files {
		ds, es := parse(f.Name, f.Data)
		all = append(all, ds...)
		errs = append(errs, es...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return build(all)
}

// ReadFiles reads what LoadDir loads from dir, naming each file by its path.
func ReadFiles(dir string) ([]File, error) {
	paths, err := ListFiles(dir)
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, len(paths))
	var errs Errors
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, &FieldError{File: p, Msg: err.Error()})
			continue
		}
		files = append(files, File{Name: p, Data: data})
	}
	return files, errs.err()
}
