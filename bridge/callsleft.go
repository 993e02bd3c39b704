package bridge

// A bridge that stops leaves its live calls to the PBX. It writes them to
// the state file with the state it last reported to the CTI software, so
// that the next bridge takes each over silently from there and reports
// only what changed while nobody watched (a call answered meanwhile:
// action_connected_url, once). Without a state file, or after a crash,
// live calls with a stored csta_id are taken over silently as they are.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// leftCall is one call in the state file's "calls".
type leftCall struct {
	CSTAID int    `json:"csta_id"`
	State  string `json:"state"`
}

var stateByName = map[string]pbx.State{}

func init() {
	for st := pbx.StateInitiated; st <= pbx.StateHeld; st++ {
		stateByName[st.String()] = st
	}
}

// reportedStates turns the state file's calls into the switchboard's form;
// entries it does not understand are left out (taken over as they are).
func reportedStates(left map[string][]leftCall) map[string]map[int]pbx.State {
	out := map[string]map[int]pbx.State{}
	for ext, calls := range left {
		for _, c := range calls {
			if st, ok := stateByName[c.State]; ok && c.CSTAID != 0 {
				if out[ext] == nil {
					out[ext] = map[int]pbx.State{}
				}
				out[ext][c.CSTAID] = st
			}
		}
	}
	return out
}

// endLeftCalls reports the end of the calls a previous bridge left to the
// PBX that ended while no bridge watched (the PBX's list after the first
// connect does not have them): the CTI software last saw them live, so
// their disconnected (or missed) and onhook URLs fire now, once, as the
// phone fired them when its user hung up. seen holds the connections the
// PBX listed. Runs on the switchboard goroutine, before s.reported goes.
func (s *switchboard) endLeftCalls(seen map[pbx.CallRef]bool) {
	listed := map[string]map[int]bool{}
	for _, name := range s.sortedNames() {
		for _, c := range s.phones[name].calls {
			if seen[c.ref] {
				if listed[name] == nil {
					listed[name] = map[int]bool{}
				}
				listed[name][c.id] = true
			}
		}
	}
	for _, name := range s.sortedNames() {
		p := s.phones[name]
		for _, id := range slices.Sorted(maps.Keys(s.reported[name])) {
			if listed[name][id] {
				continue
			}
			st := s.reported[name][id]
			// The id tells the direction: incoming calls count down.
			dir := pbx.Outgoing
			if id < 0 {
				dir = pbx.Incoming
			}
			s.log.Info("call left to the PBX ended while the bridge was away", "ext", name, "csta_id", id, "last_state", st.String())
			c := s.newCall(p, pbx.CallRef{Ext: name, ID: fmt.Sprintf("left-%d", id)}, dir, st, pbx.Party{}, "", nil, id, false)
			s.clear(p, c, pbx.CauseVanished, "")
		}
	}
}

// saveLeftCalls writes the live calls to the state file and says how many
// the bridge leaves in the PBX's hands.
func (a *App) saveLeftCalls(ctx context.Context) error {
	left := map[string][]leftCall{}
	n := 0
	if err := a.sb.do(ctx, func() {
		for name, p := range a.sb.phones {
			for _, c := range p.byAge() {
				left[name] = append(left[name], leftCall{CSTAID: c.id, State: c.state.String()})
				n++
			}
		}
	}); err != nil {
		return fmt.Errorf("listing the live calls: %w", err)
	}
	if n > 0 {
		exts := slices.Sorted(maps.Keys(left))
		a.log.Info("leaving live calls to the PBX", "calls", n, "extensions", exts)
	}
	path := a.cfg.Load().StateFile
	if path == "" {
		return nil
	}
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	st := stateFile{Version: 1, Extensions: a.stored}
	if n > 0 {
		st.Calls = left
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}
