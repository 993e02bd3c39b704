package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/csta"
)

// bareServer is the practical limit the bridge is compared with: a plain
// net/http server that reads the body and answers a fixed CSTA response.
type bareServer struct {
	srv  *http.Server
	url  string
	done chan struct{}
}

func startBare() (*bareServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	resp := csta.EncodeResponse(&csta.Request{Service: csta.AnswerCall, Envelope: true}, csta.Result{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, csta.MaxBodySize)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write(resp)
	})
	b := &bareServer{url: "http://" + ln.Addr().String(), done: make(chan struct{}),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second}}
	go func() {
		defer close(b.done)
		if err := b.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "bench: bare server stopped:", err)
		}
	}()
	return b, nil
}

func (b *bareServer) close() {
	_ = b.srv.Close()
	<-b.done
}
