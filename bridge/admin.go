package bridge

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminHandler serves the admin listener: metrics, health, the simulator's
// control API and the status page.
func (a *App) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("OK\n"))
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, r *http.Request) {
		if a.opts.Lease != nil && !a.active.Load() {
			http.Error(w, "standby: the active bridge is "+a.opts.Lease.Holder(), http.StatusServiceUnavailable)
			return
		}
		if !a.Ready() {
			http.Error(w, "PBX not connected: "+a.linkState.Load().(string), http.StatusServiceUnavailable)
			return
		}
		if d := a.degraded(); d != "" {
			w.Write([]byte("OK, degraded: " + d + "\n"))
			return
		}
		w.Write([]byte("OK\n"))
	})
	mux.HandleFunc("/sim/", func(w http.ResponseWriter, r *http.Request) {
		h := a.simAdmin.Load().h
		if h == nil {
			http.Error(w, "the simulator is not the configured PBX", http.StatusNotFound)
			return
		}
		h.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /stored", a.storedHandler)
	mux.HandleFunc("DELETE /stored/{ext}", a.storedHandler)
	a.statusRoutes(mux)
	statusAssets(mux)
	return mux
}
