package bridge

import (
	"context"
	"fmt"
	"sync"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// fakePBX records commands and lets a test play PBX events. A command's
// result comes from fail (by method name) or, when block is set, waits until
// the test releases it.
type fakePBX struct {
	mu       sync.Mutex
	events   chan<- pbx.Event
	running  chan struct{}
	exts     []pbx.Extension
	commands []string
	fail     map[string]error
	block    chan struct{} // non-nil: commands wait for it to close
	entered  chan string   // receives each command's name as it starts
	tags     map[pbx.CallRef]int
	tagGate  chan struct{} // non-nil: TagCall waits for it to close (or its ctx)
	stopped  chan struct{} // closed when Run's ctx is done (the core stopped the adapter)
	// onMakeCall runs inside MakeCall before it returns, like a PBX that
	// reports the new call early.
	onMakeCall func(pbx.MakeCallRequest)
}

func newFakePBX() *fakePBX {
	return &fakePBX{running: make(chan struct{}), stopped: make(chan struct{}), fail: map[string]error{}, tags: map[pbx.CallRef]int{},
		entered: make(chan string, 64)}
}

func (f *fakePBX) Run(ctx context.Context, events chan<- pbx.Event) error {
	f.mu.Lock()
	f.events = events
	f.mu.Unlock()
	close(f.running)
	events <- pbx.Event{Kind: pbx.EventLink, Up: true}
	events <- pbx.Event{Kind: pbx.EventSync}
	<-ctx.Done()
	close(f.stopped)
	return ctx.Err()
}

func (f *fakePBX) SetExtensions(exts []pbx.Extension) {
	f.mu.Lock()
	f.exts = exts
	f.mu.Unlock()
}

// emit plays one PBX event.
func (f *fakePBX) emit(ev pbx.Event) {
	<-f.running
	f.mu.Lock()
	ch := f.events
	f.mu.Unlock()
	ch <- ev
}

func (f *fakePBX) command(ctx context.Context, name, arg string) error {
	f.mu.Lock()
	f.commands = append(f.commands, name+" "+arg)
	err := f.fail[name]
	block := f.block
	f.mu.Unlock()
	select {
	case f.entered <- name:
	default:
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (f *fakePBX) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.commands...)
}

func (f *fakePBX) Answer(ctx context.Context, c pbx.CallRef) error {
	return f.command(ctx, "Answer", c.String())
}
func (f *fakePBX) Hold(ctx context.Context, c pbx.CallRef) error {
	return f.command(ctx, "Hold", c.String())
}
func (f *fakePBX) Retrieve(ctx context.Context, c pbx.CallRef) error {
	return f.command(ctx, "Retrieve", c.String())
}
func (f *fakePBX) ClearConnection(ctx context.Context, c pbx.CallRef) error {
	return f.command(ctx, "ClearConnection", c.String())
}
func (f *fakePBX) ClearCall(ctx context.Context, c pbx.CallRef) error {
	return f.command(ctx, "ClearCall", c.String())
}
func (f *fakePBX) SingleStepTransfer(ctx context.Context, c pbx.CallRef, dest string) error {
	return f.command(ctx, "SingleStepTransfer", c.String()+" "+dest)
}
func (f *fakePBX) Transfer(ctx context.Context, held, active pbx.CallRef) error {
	return f.command(ctx, "Transfer", held.String()+" "+active.String())
}
func (f *fakePBX) MakeCall(ctx context.Context, req pbx.MakeCallRequest) error {
	if f.onMakeCall != nil {
		f.onMakeCall(req)
	}
	return f.command(ctx, "MakeCall", fmt.Sprintf("%s %d %s %v", req.Call.Ext, req.CSTAID, req.Destination, req.AutoAnswer))
}
func (f *fakePBX) TagCall(ctx context.Context, c pbx.CallRef, id int) error {
	f.mu.Lock()
	gate := f.tagGate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.tags[c] = id
	f.mu.Unlock()
	return nil
}

func (f *fakePBX) SendDTMF(ctx context.Context, c pbx.CallRef, digits string) error {
	return f.command(ctx, "SendDTMF", c.String()+" "+digits)
}
