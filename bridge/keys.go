package bridge

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/csta"
	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// keypad is the part of a phone's UI that key presses drive: digits typed so
// far, and whether they are the target of a transfer.
type keypad struct {
	digits       string
	transferring int // csta_id of the call being transferred; 0 when not in transfer dialling
}

// pressKey emulates one key press on extension ext's phone.
func (a *App) pressKey(ctx context.Context, ext, key string, log *slog.Logger) {
	var req *csta.Request
	err := a.sb.do(ctx, func() {
		p := a.sb.phones[ext]
		if p == nil {
			return
		}
		req = p.keyRequest(key)
	})
	if err != nil || req == nil {
		return
	}
	if req.Service == "dtmf" {
		a.sendDTMF(ctx, ext, req.Called, log)
		return
	}
	if _, cerr := a.svc.serve(ctx, ext, req); cerr != nil {
		log.Warn("key press failed", "key", key, "service", req.Service, "code", cerr.Code, "reason", cerr.Message)
	}
}

// keyRequest turns a key press into the service it stands for, updating the
// keypad; nil when the key only changes the keypad or means nothing now.
func (p *phone) keyRequest(key string) *csta.Request {
	conn := func(c *call) csta.ConnectionID { return csta.ConnectionID{CallID: strconv.Itoa(c.id)} }
	ringing := p.oldest(pbx.StateAlerting)
	active := p.oldest(pbx.StateConnected)
	held := p.oldest(pbx.StateHeld)
	dialing := p.oldest(pbx.StateInitiated)
	switch key {
	case "DND":
		// Toggles do-not-disturb, as the key does on a Snom.
		return &csta.Request{Service: csta.SetDoNotDisturb, Device: p.cfg.Name,
			DoNotDisturbOn: strconv.FormatBool(!p.features().DND)}
	case "ENTER", "OFFHOOK", "SPEAKER", "HEADSET":
		if p.keys.transferring != 0 && p.keys.digits != "" {
			id, digits := p.keys.transferring, p.keys.digits
			p.keys = keypad{}
			return &csta.Request{Service: csta.SingleStepTransferCall,
				Conn: csta.ConnectionID{CallID: strconv.Itoa(id)}, TransferredTo: digits}
		}
		if ringing != nil {
			return &csta.Request{Service: csta.AnswerCall, Conn: conn(ringing)}
		}
		if p.keys.digits != "" && p.keys.transferring == 0 {
			digits := p.keys.digits
			p.keys = keypad{}
			return &csta.Request{Service: csta.MakeCall, Called: digits}
		}
	case "CANCEL", "ONHOOK", "DISCONNECT", "X":
		if key == "CANCEL" && (p.keys.digits != "" || p.keys.transferring != 0) {
			p.keys = keypad{}
			return nil
		}
		p.keys = keypad{}
		for _, c := range []*call{active, ringing, dialing, held} {
			if c != nil {
				return &csta.Request{Service: csta.ClearConnection, Conn: conn(c)}
			}
		}
	case "F_HOLD", "HOLD", "F_R":
		if active != nil {
			return &csta.Request{Service: csta.HoldCall, Conn: conn(active)}
		}
		if held != nil {
			return &csta.Request{Service: csta.RetrieveCall, Conn: conn(held)}
		}
	case "TRANSFER", "F_TRANSFER":
		if p.keys.transferring != 0 && p.keys.digits != "" {
			return p.keyRequest("ENTER")
		}
		if held != nil && (active != nil || dialing != nil) {
			// A held and an active call: TRANSFER joins them (attended).
			act := active
			if act == nil {
				act = dialing
			}
			p.keys = keypad{}
			return &csta.Request{Service: csta.TransferCall, Held: conn(held), Active: conn(act)}
		}
		if c := firstOf(active, held); c != nil {
			p.keys = keypad{transferring: c.id}
		}
	default:
		if len(key) == 1 && strings.Contains("0123456789*#", key) {
			if active != nil && p.keys.transferring == 0 {
				return &csta.Request{Service: "dtmf", Called: key}
			}
			p.keys.digits += key
		}
		// Any other key (menus, volume, function keys) changes nothing a CTI client sees.
	}
	return nil
}

func firstOf(cs ...*call) *call {
	for _, c := range cs {
		if c != nil {
			return c
		}
	}
	return nil
}

// oldest returns the phone's longest-living call in state st.
func (p *phone) oldest(st pbx.State) *call {
	var found *call
	for _, c := range p.calls {
		if !c.pending && c.state == st && (found == nil || c.created.Before(found.created) ||
			(c.created.Equal(found.created) && c.id < found.id)) {
			found = c
		}
	}
	return found
}

// releaseAll clears every call of the phone (?RELEASE_ALL_CALLS).
func (a *App) releaseAll(ctx context.Context, ext string, log *slog.Logger) {
	var ids []int
	_ = a.sb.do(ctx, func() {
		if p := a.sb.phones[ext]; p != nil {
			for id, c := range p.calls {
				if !c.pending {
					ids = append(ids, id)
				}
			}
			p.keys = keypad{}
		}
	})
	slices.Sort(ids)
	for _, id := range ids {
		req := &csta.Request{Service: csta.ClearConnection, Conn: csta.ConnectionID{CallID: strconv.Itoa(id)}}
		if _, cerr := a.svc.serve(ctx, ext, req); cerr != nil {
			log.Warn("release all calls: clear failed", "csta_id", id, "code", cerr.Code, "reason", cerr.Message)
		}
	}
}

// sendDTMF sends digits on the phone's connected call, where the adapter can.
func (a *App) sendDTMF(ctx context.Context, ext, digits string, log *slog.Logger) {
	var ref pbx.CallRef
	_ = a.sb.do(ctx, func() {
		if p := a.sb.phones[ext]; p != nil {
			if c := p.oldest(pbx.StateConnected); c != nil {
				ref = c.ref
			}
		}
	})
	if ref.ID == "" || digits == "" {
		return
	}
	d, ok := a.currentPBX().(pbx.DTMFSender)
	if !ok {
		log.Info("DTMF not supported by this PBX adapter", "digits", digits)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	if err := d.SendDTMF(ctx, ref, digits); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("DTMF failed", "digits", digits, "err", err)
	}
}
