package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// A failed loop's clean-up hangs up its own extension's channels and
// removes only the bridges that hold them: the other bridges of the
// application carry the other loops' live calls (issue 15: removing them
// turned one failed cycle on the real Asterisk into several). Before and
// after the run every bridge of the application goes.
func TestAriClearKeepsOtherLoopsBridges(t *testing.T) {
	var mu sync.Mutex
	var deleted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/ari/channels":
			_ = json.NewEncoder(w).Encode([]map[string]any{
				{"id": "c1", "name": "PJSIP/1001-00000001", "caller": map[string]string{"number": "+4930123456"}},
				{"id": "c2", "name": "PJSIP/1002-00000002", "caller": map[string]string{"number": "+4930123456"}},
			})
		case r.Method == http.MethodGet && r.URL.Path == "/ari/bridges":
			_ = json.NewEncoder(w).Encode([]map[string]any{
				{"id": "b1", "bridge_type": "mixing", "creator": "csta-bridge", "channels": []string{"c1"}},
				{"id": "b2", "bridge_type": "mixing", "creator": "csta-bridge", "channels": []string{"c2"}},
				{"id": "b3", "bridge_type": "mixing", "creator": "csta-bridge", "channels": []string{}},
				{"id": "other", "bridge_type": "mixing", "creator": "someone-else", "channels": []string{}},
			})
		case r.Method == http.MethodDelete:
			mu.Lock()
			deleted = append(deleted, r.URL.Path)
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	a := &ariStress{url: srv.URL + "/ari", app: "csta-bridge", http: srv.Client()}
	ctx := context.Background()

	n, err := a.Clear(ctx, []string{"1001"}, false)
	if err != nil || n != 1 {
		t.Fatalf("loop clean-up: %d channels, %v; want 1", n, err)
	}
	mu.Lock()
	got := slices.Clone(deleted)
	deleted = nil
	mu.Unlock()
	slices.Sort(got)
	if want := []string{"/ari/bridges/b1", "/ari/channels/c1"}; !slices.Equal(got, want) {
		t.Errorf("loop clean-up removed %v, want %v (the other loops' bridges b2, b3 stay)", got, want)
	}

	if _, err := a.Clear(ctx, []string{"1001", "1002"}, true); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got = slices.Clone(deleted)
	mu.Unlock()
	slices.Sort(got)
	if want := []string{"/ari/bridges/b1", "/ari/bridges/b2", "/ari/bridges/b3", "/ari/channels/c1", "/ari/channels/c2"}; !slices.Equal(got, want) {
		t.Errorf("end of run removed %v, want %v", got, want)
	}
}
