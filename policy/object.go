package policy

import "fmt"

// Validate checks one object on its own: every field rule, none of the rules
// that need the other objects of a set (known attestors, unique strategy
// ids), which NewSnapshot checks. It is what imagegate's own admission check
// of policy custom resources runs, so a kubectl apply is refused with the
// same messages a policy file gets.
func Validate(o Object) error {
	var p problems
	switch v := o.(type) {
	case *Attestor:
		v.validate(&p)
	case *BinarySecurityPolicy:
		v.validate(&p)
	case *OpaStrategy:
		v.validate(&p)
	default:
		return fmt.Errorf("policy: unsupported object %T", o)
	}
	var errs Errors
	for _, pr := range p {
		errs = append(errs, &FieldError{Kind: o.kind(), Name: o.name(), Path: pr.path, Msg: pr.msg})
	}
	return errs.err()
}

// KindOf and NameOf identify an object, e.g. to match a FieldError to it.
func KindOf(o Object) string { return o.kind() }

// NameOf returns the object's metadata.name.
func NameOf(o Object) string { return o.name() }
