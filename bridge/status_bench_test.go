package bridge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// BenchmarkStatusPage is one request of the status page at 3 and at 10,000
// phones, in-process (no socket): the page of 50 copied off the
// switchboard, rendered and written; B/op is the memory per request. The
// search walks every name; the API is what the page polls.
func BenchmarkStatusPage(b *testing.B) {
	for _, n := range []int{3, 10000} {
		b.Run(fmt.Sprintf("phones=%d", n), func(b *testing.B) {
			app, fp := startScale(b, n, "")
			// A call on the first page, as on a working day.
			fp.emit(pbx.Event{Kind: pbx.EventOffered, Call: pbx.CallRef{Ext: "1001", ID: "c1"}, Remote: pbx.Party{Number: "+4930123456"}})
			flushApp(b, app)
			h := app.adminHandler()
			for _, p := range []struct{ name, path string }{
				{"overview", "/"}, {"search", "/?q=Agent+2"}, {"api", "/api/phones"}, {"extension", "/ext/1001"},
			} {
				b.Run(p.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.path, nil))
						if rec.Code != http.StatusOK {
							b.Fatalf("%s: %d %s", p.path, rec.Code, rec.Body)
						}
						b.SetBytes(int64(rec.Body.Len()))
					}
				})
			}
		})
	}
}

// BenchmarkStatusSnapshot is the part of the status page that runs on the
// switchboard goroutine, where it holds up every /csta request and event:
// one page of 50 phones, whatever the number of phones.
func BenchmarkStatusSnapshot(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("phones=%d", n), func(b *testing.B) {
			app, _ := startForBench(b, n)
			q := statusQuery{Page: 2, N: statusPerPage}
			names := app.statusIndex().page(&q).names
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := app.sb.do(ctx, func() { app.snapshotPhones(names) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
