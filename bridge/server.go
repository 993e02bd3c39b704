package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/csta-bridge/csta-bridge/bridge/config"
)

// Timeouts and limits of every listener. A slow or stuck client must not hold
// a connection forever, and a flood of them must not starve /csta.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 90 * time.Second
	maxHeaderBytes    = 16 << 10
	maxConnsPerListen = 1024
	maxConnsPerIP     = 256 // one CTI server keeps a few keep-alive connections, not hundreds
)

// server is one bound listener.
type server struct {
	name    string
	cfgAddr string // the address as configured
	ln      net.Listener
	srv     *http.Server
}

func (s *server) addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *server) close() { _ = s.srv.Close() }

func (s *server) shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// listen binds addr now (so errors surface at start-up or reload) and serves h.
func (a *App) listen(name, addr string, tlsCfg config.TLS, h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener: %w", name, err)
	}
	ln = limitListener(ln, maxConnsPerListen, maxConnsPerIP)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	if tlsCfg.Enabled() {
		cert, err := tls.LoadX509KeyPair(tlsCfg.Cert, tlsCfg.Key)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("%s listener: tls: %w", name, err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s := &server{name: name, cfgAddr: addr, ln: ln, srv: srv}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("listener failed", "listener", name, "err", err)
		}
	}()
	a.log.Info("listening", "listener", name, "addr", s.addr())
	return s, nil
}
