package audit_test

import (
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/audit/storetest"
)

func TestStoreRules(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		s, err := audit.OpenStore(filepath.Join(t.TempDir(), "audit.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
