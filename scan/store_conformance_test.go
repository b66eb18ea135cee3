package scan_test

import (
	"path/filepath"
	"testing"

	"github.com/imagegate/imagegate/scan"
	"github.com/imagegate/imagegate/scan/storetest"
)

func TestFileStoreRules(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		return scan.NewFile(filepath.Join(t.TempDir(), "scans.db"))
	})
}
