package ari

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"time"

	"golang.org/x/net/websocket"
)

// dialEvents opens the ARI event websocket for the application. The whole
// handshake runs under ctx and the request timeout, so an Asterisk that
// accepts TCP but never answers cannot stall the supervisor.
func dialEvents(ctx context.Context, o *Options) (*websocket.Conn, error) {
	cfg, err := websocket.NewConfig(o.wsURL(), o.originURL())
	if err != nil {
		return nil, err
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(o.Username+":"+o.Password)))
	u := cfg.Location
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "wss" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	d := &net.Dialer{KeepAlive: 15 * time.Second}
	var conn net.Conn
	if u.Scheme == "wss" {
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}}
		conn, err = td.DialContext(ctx, "tcp", host)
	} else {
		conn, err = d.DialContext(ctx, "tcp", host)
	}
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	ws, err := websocket.NewClient(cfg, conn)
	stop()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("websocket handshake with %s: %w", safeLocation(u), err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ws, nil
}

func safeLocation(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// readEvents reads frames until the connection fails, handing each one to
// handle. It returns the read error.
func readEvents(ws *websocket.Conn, handle func([]byte)) error {
	for {
		var data []byte
		if err := websocket.Message.Receive(ws, &data); err != nil {
			return err
		}
		handle(data)
	}
}
