package ari

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/client/native"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// newNativeClient builds the REST side of the native ARI client. It never
// calls Connect: the adapter reads events itself (see wsconn.go).
//
// ari v5.3.1 sends every request through an unexported zero-value
// http.Client, which has no timeout at all, so a stuck Asterisk would hang a
// command forever. The field is replaced with a bounded client here. This
// is tied to v5.3.1's layout; if the field ever disappears the function
// returns an error and the adapter refuses to start instead of running
// without timeouts (TestNativeClientHasTimeout guards it).
func newNativeClient(o *Options) (ari.Client, error) {
	c := native.New(&native.Options{
		Application:  o.Application,
		URL:          o.URL,
		WebsocketURL: o.wsURL(),
		Username:     o.Username,
		Password:     o.Password,
	})
	hc := &http.Client{
		Timeout: o.RequestTimeout,
		Transport: &logTransport{log: o.Logger.With("pbx", "ari"), next: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: o.RequestTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   o.RequestTimeout,
			ResponseHeaderTimeout: o.RequestTimeout,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
		}},
	}
	f := reflect.ValueOf(c).Elem().FieldByName("httpClient")
	if !f.IsValid() || f.Type() != reflect.TypeOf(http.Client{}) {
		return nil, errors.New("ari: cannot bound the ARI client's HTTP timeout (unexpected ari library layout)")
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(*hc))
	return c, nil
}

// httpStatus digs the HTTP status out of an ari library error (0 if none).
// The data getters (Channel().Data, Bridge().Data, ...) wrap the request
// error in a type that has Cause() but no Unwrap, so errors.As alone never
// sees their 404 (a channel that hung up between a list and a get).
func httpStatus(err error) int {
	if err == nil {
		return 0
	}
	msg := err.Error()
	for depth := 0; err != nil && depth < 8; depth++ {
		var re native.RequestError
		if errors.As(err, &re) {
			return re.Code()
		}
		var c interface{ Cause() error }
		if !errors.As(err, &c) {
			break
		}
		err = c.Cause()
	}
	return proxyErrStatus(msg)
}

// allocationFailed says Asterisk could not create a channel to the
// endpoint at all: POST /channels and /channels/create answer 500
// "Allocation failed" for an endpoint it cannot call, 400 for originate
// parameters it rejects.
func allocationFailed(err error) bool {
	st := httpStatus(err)
	return st == http.StatusInternalServerError || st == http.StatusBadRequest
}

// rest runs one library call with the per-request deadline and ctx. The call
// itself is bounded by the HTTP client's timeout, so the goroutine left
// behind when ctx ends first finishes soon after.
func (a *Adapter) rest(ctx context.Context, fn func(ari.Client) error) error {
	return a.restWith(ctx, a.currentClient(), fn)
}

func (a *Adapter) restWith(ctx context.Context, cl ari.Client, fn func(ari.Client) error) error {
	if cl == nil || a.stopping() {
		return pbx.ErrUnavailable // never sent (mayHaveRun)
	}
	ctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	return bounded(ctx, func() error { return fn(cl) })
}

// bounded runs one library call until ctx ends. The call itself is bounded
// by its client's timeout, so the goroutine left behind finishes soon after.
// A library panic becomes an error; a failure keeps the library error
// reachable (restError).
func bounded(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("ari library panic: %v", r)
			}
		}()
		if err := fn(); err != nil {
			done <- restError{err}
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", pbx.ErrUnavailable, ctx.Err())
	}
}

// stopping says Run's context has ended: the bridge is stopping, and
// from then on the adapter sends Asterisk nothing (issue 19). The calls
// stay as Asterisk has them, for the next bridge to take over. A command
// cut short by the stop would otherwise undo what it did: a Dial whose
// answer had not come back yet counts as failed, and the channel it was
// ringing was hung up, so the next bridge found a ringing call gone.
func (a *Adapter) stopping() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bgCtx.Err() != nil
}

// errText shortens an ari library error to one line: the library's errors
// carry a stack trace after the message.
func errText(err error) string {
	var parts []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "ari.") && !strings.HasPrefix(line, "native.") && !strings.Contains(line, ".go:") {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, ": ")
}

// restError is a REST failure with a readable message that keeps the
// library error (and its HTTP status) reachable through errors.As.
type restError struct{ err error }

func (e restError) Error() string { return errText(e.err) }
func (e restError) Unwrap() error { return e.err }

// mapErr turns a REST failure into the pbx sentinel the core expects.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pbx.ErrUnavailable) {
		return err
	}
	if !errors.As(err, new(restError)) {
		err = restError{err}
	}
	switch st := httpStatus(err); {
	case st == http.StatusNotFound:
		return fmt.Errorf("%w (%v)", pbx.ErrNoSuchCall, err)
	case st == http.StatusConflict:
		return fmt.Errorf("%w: Asterisk answered 409, the channel is not (or no longer) in the bridge's Stasis application; calls that bypass the csta-bridge dialplan snippet cannot be controlled (%v)", pbx.ErrNotSupported, err)
	case st == http.StatusPreconditionFailed || st == http.StatusUnprocessableEntity:
		// 412 channel in the wrong state; 422 channel not in that bridge.
		return fmt.Errorf("%w (%v)", pbx.ErrInvalidState, err)
	case st == http.StatusBadRequest:
		return fmt.Errorf("%w (%v)", pbx.ErrInvalidDestination, err)
	case st == http.StatusServiceUnavailable || st >= 500 || st == 0:
		return fmt.Errorf("%w (%v)", pbx.ErrUnavailable, err)
	default:
		return fmt.Errorf("%w (%v)", pbx.ErrUnavailable, err)
	}
}

func chanKey(id string) *ari.Key   { return ari.NewKey(ari.ChannelKey, id) }
func bridgeKey(id string) *ari.Key { return ari.NewKey(ari.BridgeKey, id) }
