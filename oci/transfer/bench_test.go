package transfer

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/olmhq/olm/blobstore"
)

// capWriter limits one response to rate bytes per second, as a CDN's
// per-connection cap or a long-RTT TCP window does.
type capWriter struct {
	http.ResponseWriter
	rate  float64
	start time.Time
	sent  int64
}

func (c *capWriter) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		k := min(len(p), 256<<10)
		m, err := c.ResponseWriter.Write(p[:k])
		n += m
		c.sent += int64(m)
		if err != nil {
			return n, err
		}
		p = p[k:]
		if d := time.Duration(float64(c.sent)/c.rate*float64(time.Second)) - time.Since(c.start); d > 0 {
			time.Sleep(d)
		}
	}
	return n, nil
}

// BenchmarkPullCappedConnections pulls a 256 MiB layer from a registry that
// serves each connection at 64 MiB/s: Parts ranged GETs multiply the rate
// until the disk or CPU limits it. Run: go test -run '^$' -bench Capped ./oci/transfer
func BenchmarkPullCappedConnections(b *testing.B) {
	const size = 256 << 20
	f, host := newRegistry(b)
	inner := f.h
	f.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			w = &capWriter{ResponseWriter: w, rate: 64 << 20, start: time.Now()}
		}
		inner.ServeHTTP(w, r)
	})
	pushModel(b, host, "m/capped:v1", size)
	for _, parts := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("parts=%d", parts), func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				s, err := blobstore.Open(filepath.Join(b.TempDir(), "store"), blobstore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				repo, ref := repoFor(b, host, "m/capped:v1")
				if _, err := Copy(context.Background(), repo, "v1", s, ref.String(), Options{Parts: parts}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
