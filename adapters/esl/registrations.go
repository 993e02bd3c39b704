package esl

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/pbx"
)

// Which devices are registered. Events (sofia::register, unregister,
// expire) report changes while a session lasts; what happened while no
// session did is read at each (re)connect from `show registrations as
// json`, before the link is reported up, so the core (and a cluster, which
// sends an unpinned extension's MakeCall to the node its device is
// registered on) knows where every phone is from the start.
//
// Why that listing: it covers every SIP profile in one command (mod_sofia
// writes each REGISTER of any profile to the core database), in FreeSWITCH's
// JSON like `show channels`, with a column set fixed by the core's schema
// (reg_user, realm, token, url, expires, network_*, hostname, metadata),
// and only this host's rows (hostname = switchname, so FreeSWITCHes sharing
// one core database do not list each other's phones). `sofia status profile
// <name> reg` is a text table for people, and it and `sofia xmlstatus` need
// one command per profile, whose names the adapter does not know.
//
// The core database has two lags, both seen on FreeSWITCH 1.10.12:
//   - its SQL thread writes a registration or its removal about 200 ms
//     after the REGISTER (as for channels). A change whose event came
//     before the event subscription may therefore be missing from the
//     first listing; the recheck (sync.go) reads the registrations again a
//     second later and applies them to the devices no event has reported
//     in this session (events since the subscription are newer than any
//     listing, which lags them).
//   - a registration that expires (sofia::expire) is deleted from it only
//     by a sweep every 15 s. Each row has `expires` (FreeSWITCH's clock,
//     the expiry plus the profile's late margin, as sofia uses it), so
//     rows past it are dropped, against FreeSWITCH's own clock (`strepoch`:
//     the bridge may run on another host).

// regRow is a row of `show registrations as json`.
type regRow struct {
	User    string `json:"reg_user"`
	Realm   string `json:"realm"`
	Expires string `json:"expires"` // Unix seconds; "0" for none
}

// parseShowRegistrations decodes `show registrations as json`. As for
// channels, an empty list is {"row_count": 0} without a rows key
// (testdata/l_registrations).
func parseShowRegistrations(body string) ([]regRow, error) {
	body = strings.TrimSpace(body)
	if strings.HasPrefix(body, "-") {
		return nil, checkReply("show registrations", body)
	}
	var v struct {
		RowCount *int     `json:"row_count"`
		Rows     []regRow `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("esl: show registrations: %w", err)
	}
	if v.RowCount == nil {
		return nil, errors.New("esl: show registrations: no row_count in reply")
	}
	if *v.RowCount != len(v.Rows) {
		return nil, fmt.Errorf("esl: show registrations: row_count %d but %d rows", *v.RowCount, len(v.Rows))
	}
	return v.Rows, nil
}

// parseEpoch decodes `strepoch`: FreeSWITCH's clock in Unix seconds.
func parseEpoch(body string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(body), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("esl: strepoch: unexpected reply %q", shorten(body))
	}
	return n, nil
}

// registeredUsers reads which users have a live registration on
// FreeSWITCH. An answer the adapter cannot use (an -ERR, e.g. "SQL
// disabled", or a reply it cannot read) is logged and gives nil: nothing
// is known, and what was reported stands. Only a failed link is an error.
func (a *Adapter) registeredUsers(s *session) (map[string]bool, error) {
	body, err := s.api(s.ctx, "show", "registrations as json")
	if err != nil && !isReply(err) {
		return nil, err
	}
	var rows []regRow
	if err == nil {
		rows, err = parseShowRegistrations(body)
	}
	if err != nil {
		a.log.Warn("cannot read FreeSWITCH's registrations; devices are known from their next registration", "err", err)
		return nil, nil
	}
	now := int64(0) // unknown: rows past their expiry count
	if len(rows) > 0 {
		body, err := s.api(s.ctx, "strepoch", "")
		if err != nil && !isReply(err) {
			return nil, err
		}
		if err == nil {
			now, err = parseEpoch(body)
		}
		if err != nil {
			a.log.Warn("cannot read FreeSWITCH's clock; expired registrations count until swept", "err", err)
		}
	}
	users := make(map[string]bool, len(rows))
	for _, r := range rows {
		if exp, err := strconv.ParseInt(r.Expires, 10, 64); err == nil && exp > 0 && now > 0 && exp <= now {
			continue // expired, not swept from the core database yet
		}
		if r.User != "" {
			users[r.User] = true
		}
	}
	return users, nil
}

// isReply reports whether err is FreeSWITCH's -ERR answer rather than a
// lost link or session.
func isReply(err error) bool {
	var re *replyError
	return errors.As(err, &re)
}

// syncDevices applies the registration listing of a new session: every
// mapped extension whose device is registered, or no longer is, unlike
// what was last reported, is reported (an extension never reported and
// not registered is not: that would be a log-off for every idle
// extension at each start). The knowledge of which devices this
// session's events have reported starts afresh. users nil: the listing
// could not be read; what was reported stands.
func (s *callState) syncDevices(users map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.regSeen)
	if users != nil {
		s.listedDevices(users)
	}
}

// lateDevices applies a later registration listing (the recheck, or one
// after a reload added extensions) to the devices no event of this
// session has reported: for those the listing, read after the session
// began, is the latest word; an event is newer than any listing.
func (s *callState) lateDevices(users map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if users != nil {
		s.listedDevices(users)
	}
}

// listedDevices reports the differences between a listing and what was
// last reported, skipping devices this session's events reported; s.mu
// is held.
func (s *callState) listedDevices(users map[string]bool) {
	var changed []string
	for name, x := range s.exts {
		if s.regSeen[name] {
			continue
		}
		reg := users[deviceUser(x)]
		if was, known := s.devices[name]; was == reg && (known || !reg) {
			continue
		}
		s.devices[name] = reg
		changed = append(changed, name)
	}
	slices.Sort(changed)
	for _, name := range changed {
		s.emit(pbx.Event{Kind: pbx.EventDevice, Call: pbx.CallRef{Ext: name}, Registered: s.devices[name]})
	}
}
