package pgstore_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imagegate/imagegate/audit"
	"github.com/imagegate/imagegate/internal/pgtest"
	"github.com/imagegate/imagegate/pgstore"
	"github.com/jackc/pgx/v5"
)

// The store benchmarks (make bench-store) need IMAGEGATE_BENCH_STORE=1:
// they fill millions of events, minutes of work that go test -bench over
// every package must not start by accident. IMAGEGATE_BENCH_PG_URL names a
// database to use instead of a throwaway server (the fill is kept there and
// reused); IMAGEGATE_BENCH_EVENTS sizes the fill (default 10 million).
// The server is nil with IMAGEGATE_BENCH_PG_URL.
func benchDB(b *testing.B, settings ...string) (string, *pgtest.Server) {
	b.Helper()
	if os.Getenv("IMAGEGATE_BENCH_STORE") == "" {
		b.Skip("store benchmarks: set IMAGEGATE_BENCH_STORE=1 (make bench-store)")
	}
	if u := os.Getenv("IMAGEGATE_BENCH_PG_URL"); u != "" {
		return u, nil
	}
	srv := pgtest.Start(b, settings...)
	b.Cleanup(srv.Stop)
	return srv.NewDatabase(b), srv
}

// processCPU is this process's processor time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchEvents(b *testing.B) int {
	n := 10_000_000
	if s := os.Getenv("IMAGEGATE_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1000 {
			b.Fatalf("IMAGEGATE_BENCH_EVENTS=%q: expected a whole number of at least 1000", s)
		}
	}
	return n
}

// Fill shape: fillDays days before fillEnd, fillClusters clusters with
// fillNamespaces namespaces each, fillRepos repositories.
const (
	fillDays       = 30
	fillClusters   = 20
	fillNamespaces = 50
	fillRepos      = 2000
)

var fillEnd = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// fillSQL inserts the events of one day into {table}, numbered $1 to $2,
// spread evenly over [$3, $3+1 day), as the recorder writes them: the
// 16-byte id (nanoseconds, then a counter), the filter columns, and the
// event as JSON (about 700 bytes: one image with a strategy hit and two
// findings). Of every 100 events 2 are API calls; of the admissions about
// 60 % alert, 25 % block, 10 % unsigned, 4 % error, 1 % allow; 1 in 10
// images is a Docker Hub one, whose canonical name is a second repository.
const fillSQL = `
INSERT INTO {table} (id, at, cluster_id, type, namespace, actions, repos, principal, api_action, event)
SELECT id, at, cluster, typ, ns, actions, repos, principal, api_action, CASE WHEN typ = 'api' THEN
	jsonb_build_object('id', encode(id, 'hex'), 'type', 'api', 'time', at, 'clusterId', cluster, 'uid', '', 'operation', '',
		'dryRun', false, 'kind', '', 'namespace', '', 'name', '', 'user', jsonb_build_object('username', principal),
		'decision', 'allowed', 'actions', '[]'::jsonb, 'images', '[]'::jsonb,
		'api', jsonb_build_object('requestId', 'r' || g, 'principal', principal, 'action', api_action,
			'resource', 'imagegate:strategy/' || (g % 97), 'allowed', true, 'status', 200))
	ELSE
	jsonb_build_object('id', encode(id, 'hex'), 'type', 'admission', 'time', at, 'clusterId', cluster, 'uid', md5(g::text),
		'operation', 'CREATE', 'dryRun', false, 'kind', 'Pod', 'namespace', ns, 'name', 'app-' || (g % 5000) || '-7c9f8d6b5-x' || (g % 997),
		'user', jsonb_build_object('username', 'system:serviceaccount:kube-system:replicaset-controller',
			'groups', '["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"]'::jsonb),
		'authenticated', true, 'decision', CASE WHEN actions[1] IN ('block', 'unsigned', 'error') THEN 'denied' ELSE 'allowed' END,
		'actions', to_jsonb(actions),
		'images', jsonb_build_array(jsonb_build_object('image', image, 'digest', 'sha256:' || md5(image) || md5(image || 'x'),
			'action', actions[1],
			'strategies', jsonb_build_array(jsonb_build_object('id', 1 + g % 10, 'name', 'strategy-' || (1 + g % 10), 'action', actions[1])),
			'findings', jsonb_build_array(
				jsonb_build_object('category', 'Vul', 'id', 'CVE-2024-' || (1000 + g % 7000), 'level', 'high', 'class', 'cve'),
				jsonb_build_object('category', 'Vul', 'id', 'CVE-2023-' || (1000 + g % 5000), 'level', 'medium', 'class', 'cve')))))
	END
FROM (
	SELECT g, at, int8send(((extract(epoch FROM at) * 1000000)::bigint * 1000)) || int8send(g) AS id,
		'cluster-' || (g % 20) AS cluster,
		CASE WHEN g % 100 < 2 THEN 'api' ELSE 'admission' END AS typ,
		CASE WHEN g % 100 < 2 THEN '' ELSE 'ns-' || ((g / 20) % 50) END AS ns,
		CASE WHEN g % 100 < 2 THEN '{}'::text[] ELSE (CASE
			WHEN h < 60 THEN '{alert}' WHEN h < 85 THEN '{block}' WHEN h < 95 THEN '{unsigned}' WHEN h < 99 THEN '{error}'
			ELSE '{allow}' END)::text[] END AS actions,
		CASE WHEN g % 100 < 2 THEN '{}'::text[] WHEN r % 10 = 0 THEN ARRAY['app' || r, 'index.docker.io/library/app' || r]
			ELSE ARRAY['registry.example.com/team' || (r % 50) || '/app' || r] END AS repos,
		CASE WHEN r % 10 = 0 THEN 'app' || r || ':1.' || (g % 30)
			ELSE 'registry.example.com/team' || (r % 50) || '/app' || r || ':1.' || (g % 30) END AS image,
		CASE WHEN g % 100 < 2 THEN 'ci-' || (g % 5) ELSE '' END AS principal,
		CASE WHEN g % 100 < 2 THEN 'imagegate:' || (ARRAY['CreateOpaStrategyNew', 'DescribeOpaStrategies', 'ImportScan'])[1 + g % 3]
			ELSE '' END AS api_action
	FROM (SELECT g, $3::timestamptz + (g - $1) * (interval '1 day' / ($2 - $1 + 1)) AS at,
			(g * 7919) % 100 AS h, (g * 104729) % 2000 AS r
		FROM generate_series($1::bigint, $2::bigint) g) s
) e`

// fill fills the store with n events over fillDays days, unless it holds
// them already (a kept IMAGEGATE_BENCH_PG_URL database).
func fill(b *testing.B, url string, n int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS bench_fill (events bigint NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	var have int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(events), 0) FROM bench_fill").Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have == n {
		return
	}
	if have != 0 {
		b.Fatalf("the database holds a fill of %d events, not %d: use another one", have, n)
	}
	start := time.Now()
	perDay := n / fillDays
	for d := range fillDays {
		from := fillEnd.Add(time.Duration(d-fillDays) * 24 * time.Hour)
		// Each day filled as a table of its own, then attached as the
		// day's partition, named and bounded as the store makes them: the
		// indexes are built once, in bulk, rather than row by row.
		name := pgx.Identifier{"imagegate_audit_events_" + from.Format("20060102")}.Sanitize()
		lo, hi := int64(d*perDay+1), int64((d+1)*perDay)
		if d == fillDays-1 {
			hi = int64(n)
		}
		for _, sql := range []string{
			"CREATE TABLE " + name + " (LIKE imagegate_audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
			strings.Replace(fillSQL, "{table}", name, 1),
			fmt.Sprintf("ALTER TABLE imagegate_audit_events ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')", name,
				from.Format(time.RFC3339), from.Add(24*time.Hour).Format(time.RFC3339)),
		} {
			var args []any
			if strings.HasPrefix(sql, "\nINSERT") {
				args = []any{lo, hi, from}
			}
			if _, err := conn.Exec(ctx, sql, args...); err != nil {
				b.Fatalf("fill day %d: %v", d, err)
			}
		}
	}
	if _, err := conn.Exec(ctx, "INSERT INTO imagegate_audit_repos SELECT DISTINCT unnest(repos) FROM imagegate_audit_events ON CONFLICT DO NOTHING"); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE imagegate_audit_events"); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO bench_fill VALUES ($1)", n); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d events in %s", n, time.Since(start).Round(time.Second))
}

// benchEvent is an admission event as the recorder builds it.
func benchEvent(at time.Time, seq uint64, cluster string) *audit.Event {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(id[8:], seq)
	yes := true
	img := fmt.Sprintf("registry.example.com/team%d/app%d:1.%d", seq%50, seq%2000, seq%30)
	return &audit.Event{ID: hex.EncodeToString(id[:]), Type: audit.TypeAdmission, Time: at, ClusterID: cluster,
		UID: fmt.Sprint("uid-", seq), Operation: "CREATE", Kind: "Pod", Namespace: fmt.Sprint("ns-", seq%50),
		Name: fmt.Sprint("app-", seq%5000, "-7c9f8d6b5-x", seq%997), Authenticated: &yes,
		User:     audit.User{Username: "system:serviceaccount:kube-system:replicaset-controller", Groups: []string{"system:serviceaccounts", "system:authenticated"}},
		Decision: audit.DecisionAllowed, Actions: []string{audit.ActionAlert},
		Images: []audit.ImageEvent{{Image: img, Digest: "sha256:0a6f3c1d9b2e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c", Action: audit.ActionAlert,
			Strategies: []audit.StrategyHit{{ID: 1 + int64(seq%10), Name: fmt.Sprint("strategy-", 1+seq%10), Action: audit.ActionAlert}}}},
	}
}

// BenchmarkEventsQuery reads one page of 100 through Events.Query (what
// GET /api/v1/events and imagegate events call) from the filled store,
// for each filter the events API has.
func BenchmarkEventsQuery(b *testing.B) {
	url, _ := benchDB(b)
	db, err := pgstore.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ev, err := db.Events()
	if err != nil {
		b.Fatal(err)
	}
	defer ev.Close()
	fill(b, url, benchEvents(b))
	first := fillEnd.Add(-fillDays * 24 * time.Hour)
	mid := first.Add(fillDays * 12 * time.Hour)
	// A token from the middle of the store: the first page's last id of a
	// query that starts mid-way, as a client paging that far would hold.
	token := func(q audit.Query) string {
		p, err := ev.Query(q)
		if err != nil || p.NextPageToken == "" {
			b.Fatalf("no page token: %v", err)
		}
		return p.NextPageToken
	}
	cases := []struct {
		name string
		q    audit.Query
	}{
		{"newest", audit.Query{}},
		{"type=admission", audit.Query{Type: audit.TypeAdmission}},
		{"namespace", audit.Query{Namespace: "ns-17"}},
		{"namespace=none", audit.Query{Namespace: "ns-none"}},
		{"cluster", audit.Query{ClusterID: "cluster-7"}},
		{"cluster+namespace", audit.Query{ClusterID: "cluster-7", Namespace: "ns-17"}},
		{"action=error", audit.Query{Actions: []string{audit.ActionError}}},
		{"action=allow,error", audit.Query{Actions: []string{audit.ActionAllow, audit.ActionError}}},
		{"since=1h", audit.Query{Since: fillEnd.Add(-time.Hour)}},
		{"range=1h mid", audit.Query{Since: mid, Until: mid.Add(time.Hour)}},
		{"range=1d old", audit.Query{Since: first.Add(24 * time.Hour), Until: first.Add(48 * time.Hour)}},
		{"image exact", audit.Query{Image: "registry.example.com/team17/app1017"}},
		{"image exact hub", audit.Query{Image: "index.docker.io/library/app1010"}},
		{"image none", audit.Query{Image: "registry.example.com/team1/nothing"}},
		{"image team/*", audit.Query{Image: "registry.example.com/team17/*"}},
		{"image */app1017", audit.Query{Image: "*/app1017"}},
		{"namespace+action+range", audit.Query{Namespace: "ns-17", Actions: []string{audit.ActionBlock}, Since: mid, Until: mid.Add(6 * time.Hour)}},
		{"namespace+image", audit.Query{Namespace: "ns-17", Image: "registry.example.com/team17/app1017"}},
		{"api principal", audit.Query{Type: audit.TypeAPI, Principal: "ci-1"}},
		{"api action", audit.Query{Type: audit.TypeAPI, APIActions: []string{"imagegate:ImportScan"}}},
		{"api actions 2", audit.Query{Type: audit.TypeAPI, APIActions: []string{"imagegate:ImportScan", "imagegate:DescribeOpaStrategies"}}},
		{"page mid", audit.Query{PageToken: token(audit.Query{Until: mid})}},
		{"page mid namespace", audit.Query{Namespace: "ns-17", PageToken: token(audit.Query{Namespace: "ns-17", Until: mid})}},
		{"page mid action=error", audit.Query{Actions: []string{audit.ActionError}, PageToken: token(audit.Query{Actions: []string{audit.ActionError}, Until: mid})}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			c.q.Limit = 100
			var lat []time.Duration
			var got int
			for b.Loop() {
				t0 := time.Now()
				p, err := ev.Query(c.q)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				got = len(p.Events)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(got), "events")
		})
	}
}

// BenchmarkEventsWrite is three replicas writing at once, each through its
// own pool and Events, in the recorder's batches (audit.DefaultBatchSize),
// on a server with fsync on. b.N is the number of events in all.
func BenchmarkEventsWrite(b *testing.B) {
	url, srv := benchDB(b, "fsync=on", "full_page_writes=on")
	const writers = 3
	batch := audit.DefaultBatchSize
	var stores []*pgstore.Events
	for range writers {
		db, err := pgstore.Open(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		ev, err := db.Events()
		if err != nil {
			b.Fatal(err)
		}
		defer ev.Close()
		stores = append(stores, ev)
	}
	now := time.Now().UTC()
	// Today's partition exists before the clock starts, as RunRetention
	// makes it a day ahead.
	if err := stores[0].Write([]*audit.Event{benchEvent(now, 1<<62, "cluster-0")}); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	start, goCPU := time.Now(), processCPU()
	var pgCPU time.Duration
	if srv != nil {
		pgCPU = srv.CPU()
	}
	var wg sync.WaitGroup
	for w, ev := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cluster := fmt.Sprint("cluster-", w)
			evs := make([]*audit.Event, 0, batch)
			var mine []time.Duration
			for {
				from := next.Add(int64(batch)) - int64(batch)
				if from >= int64(b.N) {
					break
				}
				evs = evs[:0]
				for i := from; i < min(from+int64(batch), int64(b.N)); i++ {
					evs = append(evs, benchEvent(now.Add(time.Duration(i)*time.Microsecond), uint64(i), cluster))
				}
				t0 := time.Now()
				if err := ev.Write(evs); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	// Processor time per event, the server's and the writers': what the
	// rate would be on cores of their own.
	b.ReportMetric(float64((processCPU()-goCPU).Microseconds())/float64(b.N), "go-cpu-µs/event")
	if srv != nil {
		b.ReportMetric(float64((srv.CPU()-pgCPU).Microseconds())/float64(b.N), "pg-cpu-µs/event")
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "batch-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "batch-p99-ms")
	}
}
