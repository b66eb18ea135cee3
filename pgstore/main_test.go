package pgstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/imagegate/imagegate/internal/pgtest"
	"github.com/imagegate/imagegate/pgstore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// openDB opens a new, migrated database on the shared server.
func openDB(t *testing.T, opts ...pgstore.Option) (*pgstore.DB, string) {
	t.Helper()
	url := pgtest.Shared(t).NewDatabase(t)
	db, err := pgstore.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db, url
}
