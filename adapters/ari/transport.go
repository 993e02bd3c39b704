package ari

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/CyCoreSystems/ari/v5"
	"golang.org/x/net/websocket"
)

// transport is how the adapter reaches one Asterisk: ARI itself (REST and
// the event websocket), or an ari-proxy over NATS (proxy.go). Everything
// else in the adapter is the same for both.
type transport interface {
	// client is the REST side, made once for the adapter's life.
	client() (ari.Client, error)
	// events opens the application's event feed. Its frames are ARI
	// events as JSON.
	events(ctx context.Context) (eventFeed, error)
	// channels and bridges list what the sweep and the resync read beyond
	// the ari library's data: each channel's dialplan application and
	// arguments, each bridge's name and members.
	channels(ctx context.Context) ([]rawChannel, error)
	bridges(ctx context.Context) ([]rawBridge, error)
	// where names the Asterisk for logs, without secrets.
	where() string
	// callIDs says whether channel data carries the SIP Call-ID
	// (protocol_id): the ari library's event types, which an ari-proxy
	// forwards, drop it.
	callIDs() bool
}

// eventFeed is an open event feed.
type eventFeed interface {
	// run hands each frame to push until the feed fails, and returns why.
	run(push func([]byte)) error
	close()
}

// nativeTransport is ARI over HTTP and its websocket.
type nativeTransport struct{ o *Options }

func (t nativeTransport) client() (ari.Client, error) { return newNativeClient(t.o) }
func (t nativeTransport) where() string               { return t.o.URL }
func (t nativeTransport) callIDs() bool               { return true }

func (t nativeTransport) events(ctx context.Context) (eventFeed, error) {
	ws, err := dialEvents(ctx, t.o)
	if err != nil {
		return nil, err
	}
	return wsFeed{ws}, nil
}

type wsFeed struct{ ws *websocket.Conn }

func (f wsFeed) run(push func([]byte)) error { return readEvents(f.ws, push) }
func (f wsFeed) close()                      { _ = f.ws.Close() }

func (t nativeTransport) channels(ctx context.Context) ([]rawChannel, error) {
	var out []rawChannel
	return out, t.get(ctx, "/channels", &out)
}

func (t nativeTransport) bridges(ctx context.Context) ([]rawBridge, error) {
	var out []rawBridge
	return out, t.get(ctx, "/bridges", &out)
}

// get reads one ARI list with its own bounded request: the ari library's
// channel data has no dialplan application.
func (t nativeTransport) get(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, t.o.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(t.o.URL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(t.o.Username, t.o.Password)
	resp, err := (&http.Client{Timeout: t.o.RequestTimeout}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return json.Unmarshal(body, out)
}
